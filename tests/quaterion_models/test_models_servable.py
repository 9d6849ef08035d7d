"""The servable directory: layout, re-save, atomic writes, and errors for damaged files."""

import json
import os

import pytest
import torch
from safetensors.torch import save_file

from quaterion_models import SimilarityModel
from quaterion_models.encoders import Encoder
from quaterion_models.heads import LinearHead
from quaterion_models.utils.files import CorruptFileError, directory_manifest


class FixedEncoder(Encoder):
    """Frozen: records are `(4,)` tensors, returned as they are."""

    @property
    def trainable(self) -> bool:
        return False

    @property
    def embedding_size(self) -> int:
        return 4

    def get_collate_fn(self):
        return torch.stack

    def forward(self, batch):
        return batch

    def save(self, output_path):
        pass

    @classmethod
    def load(cls, input_path):
        return cls()


class FailingEncoder(FixedEncoder):
    """Writes a file, then fails: simulates an error half-way through a save."""

    def save(self, output_path):
        with open(os.path.join(output_path, "partial.bin"), "wb") as handle:
            handle.write(b"half")
        raise OSError("disk full")


RECORDS = [torch.arange(4.0) + i for i in range(3)]


def make_model(seed: int, encoder: Encoder | None = None) -> SimilarityModel:
    torch.manual_seed(seed)
    return SimilarityModel(encoder or FixedEncoder(), LinearHead(4, output_size=2))


@pytest.fixture
def saved(tmp_path):
    model = make_model(0)
    model.save(tmp_path / "servable")
    return tmp_path / "servable", model.encode(RECORDS, to_numpy=False)


def test_layout_is_json_plus_safetensors(saved):
    path, _ = saved
    files = sorted(p.relative_to(path).as_posix() for p in path.rglob("*"))
    assert files == [
        "config.json",
        "encoders",
        "encoders/default",
        "head",
        "head/config.json",
        "head/weights.safetensors",
    ]
    config = json.loads((path / "config.json").read_text())
    assert config["encoders"] == [
        {"key": "default", "module": "test_models_servable", "class": "FixedEncoder"}
    ]
    assert config["head"] == {"module": "quaterion_models.heads.linear_head", "class": "LinearHead"}
    assert set(config["files"]) == {"head/config.json", "head/weights.safetensors"}
    assert json.loads((path / "head" / "config.json").read_text()) == {
        "input_embedding_size": 4,
        "dropout": 0.0,
        "output_size": 2,
        "bias": True,
    }


def test_resave_into_the_same_directory_replaces_it(saved):
    path, _ = saved
    other = make_model(1)
    other.save(path)
    reloaded = SimilarityModel.load(path)
    torch.testing.assert_close(
        reloaded.encode(RECORDS, to_numpy=False), other.encode(RECORDS, to_numpy=False)
    )
    assert sorted(os.listdir(path.parent)) == ["servable"]


def test_failed_save_keeps_the_previous_servable(saved):
    path, expected = saved
    with pytest.raises(OSError, match="disk full"):
        make_model(2, FailingEncoder()).save(path)
    torch.testing.assert_close(SimilarityModel.load(path).encode(RECORDS, to_numpy=False), expected)
    assert sorted(os.listdir(path.parent)) == ["servable"]


def test_failed_first_save_leaves_nothing(tmp_path):
    with pytest.raises(OSError, match="disk full"):
        make_model(2, FailingEncoder()).save(tmp_path / "new")
    assert os.listdir(tmp_path) == []


def test_refuses_to_replace_a_directory_that_is_not_a_servable(tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a saved model"):
        make_model(0).save(tmp_path)
    assert os.listdir(tmp_path) == ["notes.txt"]


def test_missing_directory_and_files_are_named(saved):
    path, _ = saved
    with pytest.raises(FileNotFoundError, match="does not exist"):
        SimilarityModel.load(path.parent / "nowhere")
    (path / "head" / "weights.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match=r"head/weights\.safetensors"):
        SimilarityModel.load(path)
    (path / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"model config: .*config\.json"):
        SimilarityModel.load(path)


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],  # truncated
        lambda data: data[:-1] + bytes([data[-1] ^ 0xFF]),  # one flipped weight byte
        lambda data: b"not a safetensors file",
    ],
    ids=["truncated", "bit-flip", "garbage"],
)
def test_corrupted_weights_are_named(saved, damage):
    path, _ = saved
    weights = path / "head" / "weights.safetensors"
    weights.write_bytes(damage(weights.read_bytes()))
    with pytest.raises(CorruptFileError, match=r"head/weights\.safetensors"):
        SimilarityModel.load(path)


def rewrite_manifest(path):
    """Recompute the checksums after editing files, as someone who edits on purpose would."""
    config = json.loads((path / "config.json").read_text())
    config["files"] = {
        name: entry for name, entry in directory_manifest(path).items() if name != "config.json"
    }
    (path / "config.json").write_text(json.dumps(config))


def test_corrupted_head_under_a_rewritten_manifest_is_still_named(saved):
    path, _ = saved
    weights = path / "head" / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:20])
    rewrite_manifest(path)
    with pytest.raises(CorruptFileError, match=r"Corrupted weights file .*weights\.safetensors"):
        SimilarityModel.load(path)
    save_file({"gates": torch.ones(4)}, str(weights))
    rewrite_manifest(path)
    with pytest.raises(ValueError, match=r"missing \['layer.bias', 'layer.weight'\]"):
        SimilarityModel.load(path)


def test_corrupted_configs_are_named(saved):
    path, _ = saved
    (path / "config.json").write_text('{"encoders": [')
    with pytest.raises(CorruptFileError, match=r"Corrupted model config: .*config\.json"):
        SimilarityModel.load(path)
    (path / "config.json").write_text('{"something": "else"}')
    with pytest.raises(CorruptFileError, match="lacks the 'head' or 'encoders'"):
        SimilarityModel.load(path)


def _edit_config(path, **changes):
    config = json.loads((path / "config.json").read_text())
    config.update(changes)  # config.json itself is not in the manifest it holds
    (path / "config.json").write_text(json.dumps(config))


def test_config_naming_a_class_that_is_not_an_encoder_or_head_is_refused(saved):
    path, _ = saved
    _edit_config(path, encoders=[{"key": "default", "module": "torch.nn", "class": "Linear"}])
    with pytest.raises(TypeError, match=r"config\.json names torch\.nn\.Linear .*of Encoder"):
        SimilarityModel.load(path)
    _edit_config(path, head={"module": "collections", "class": "Counter"})
    with pytest.raises(TypeError, match=r"collections\.Counter \(type\).*of EncoderHead"):
        SimilarityModel.load(path)


class RecordingEncoder(FixedEncoder):
    """Remembers the directories it was loaded from."""

    loaded_from: list[str] = []

    @classmethod
    def load(cls, input_path):
        cls.loaded_from.append(input_path)
        return cls()


@pytest.mark.parametrize("key", ["../outside", "a/b", "", None])
def test_encoder_keys_must_be_plain_names_before_anything_loads(saved, key):
    path, _ = saved
    record = {"key": key, "module": __name__, "class": "RecordingEncoder"}
    _edit_config(path, encoders=[record])
    RecordingEncoder.loaded_from.clear()
    with pytest.raises(ValueError, match="invalid key"):
        SimilarityModel.load(path)
    assert RecordingEncoder.loaded_from == []


class Planted:
    """Unpickling this creates the file `marker`."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_servable_without_manifest_is_refused_and_never_unpickles(saved, tmp_path):
    """Without the manifest nothing says which files were saved, so nothing is read."""
    path, expected = saved
    config = json.loads((path / "config.json").read_text())
    del config["files"]
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CorruptFileError, match="no valid file manifest.*re-save"):
        SimilarityModel.load(path)
    marker = tmp_path / "code-ran"
    torch.save({"x": Planted(str(marker))}, path / "head" / "weights.safetensors")
    rewrite_manifest(path)  # the checksums match the planted pickle: the format still refuses it
    with pytest.raises(CorruptFileError, match="weights.safetensors"):
        SimilarityModel.load(path)
    assert not marker.exists()
