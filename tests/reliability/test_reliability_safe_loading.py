"""Loading a servable or a cache never runs code from the files.

A planted pickle whose `__reduce__` creates a marker file stands where the original Quaterion
kept pickles (head/weights.bin, encoder weights, cache files) or where safetensors are expected;
loading must leave the marker absent, and either ignore the file or refuse it clearly. A
config.json naming an arbitrary module/class must not get it executed either.
"""

from __future__ import annotations

import builtins
import json
import pickle
from pathlib import Path

import pytest
import torch
from reliability_support import MlpEncoder, SimpleModel, group_loader, group_samples

from quaterion.train.cache import CacheConfig, CacheType
from quaterion_models import SimilarityModel
from quaterion_models.heads import LinearHead
from quaterion_models.utils.files import CorruptFileError

PROBE = [torch.randn(16, generator=torch.Generator().manual_seed(i)) for i in range(4)]


class Planted:
    """Unpickling this creates `marker`: proof that code from the file ran."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (builtins.open, (self.marker, "w"))


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "code-ran"


def _plant(path: Path, marker: Path, kind: str = "pickle") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "torch":  # what torch.save writes: a zip archive holding a pickle
        torch.save({"weight": Planted(marker)}, path)
    else:
        path.write_bytes(pickle.dumps(Planted(marker)))


def _servable(tmp_path: Path) -> tuple[Path, SimilarityModel]:
    model = SimilarityModel(MlpEncoder(), LinearHead(32, output_size=8))
    path = tmp_path / "servable"
    model.save(path)
    return path, model


def test_pickles_where_the_original_kept_weights_are_ignored(tmp_path: Path, marker: Path):
    path, model = _servable(tmp_path)
    _plant(path / "head" / "weights.bin", marker)
    _plant(path / "encoders" / "default" / "weights.bin", marker, kind="torch")
    loaded = SimilarityModel.load(path)
    assert not marker.exists()
    expected = model.encode(PROBE, to_numpy=False)
    assert torch.allclose(loaded.encode(PROBE, to_numpy=False), expected, atol=1e-6)


@pytest.mark.parametrize("kind", ["pickle", "torch"])
@pytest.mark.parametrize("with_manifest", [True, False], ids=["manifest", "no-manifest"])
@pytest.mark.parametrize("where", ["head", "encoders/default"])
def test_pickle_in_place_of_safetensors_is_refused_unrun(
    tmp_path: Path, marker: Path, kind: str, with_manifest: bool, where: str
):
    path, _ = _servable(tmp_path)
    _plant(path / where / "weights.safetensors", marker, kind)
    if not with_manifest:  # a hand-edited config: no checksums to catch the swap
        config = json.loads((path / "config.json").read_text())
        del config["files"]
        (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CorruptFileError, match="weights.safetensors"):
        SimilarityModel.load(path)
    assert not marker.exists()


def _cache_rows(save_dir: Path) -> tuple[torch.Tensor, torch.Tensor]:
    samples = group_samples()
    model = SimpleModel(cache=CacheConfig(CacheType.CPU, save_dir=str(save_dir)))
    model.setup_cache(None, group_loader(samples), None)
    rows = model.model.encoders["default"].embeddings("train")
    model.unwrap_cache()
    with torch.no_grad():
        fresh = model.model.encoders["default"](torch.stack([s.obj for s in samples]))
    return rows, fresh


@pytest.mark.parametrize("kind", ["pickle", "torch"])
def test_cache_files_replaced_by_pickles_are_rebuilt_unrun(tmp_path: Path, marker: Path, kind: str):
    save_dir = tmp_path / "cache"
    _cache_rows(save_dir)
    (stored,) = save_dir.rglob("train.safetensors")
    _plant(stored, marker, kind)
    for original in ("encoders/default", "train_labels", "val_labels"):  # the original's layout
        _plant(save_dir / original, marker, kind)
    rows, fresh = _cache_rows(save_dir)
    assert not marker.exists()
    assert torch.allclose(rows, fresh, atol=1e-6)


def _name_class(path: Path, part: str, record: dict, key: str = "default") -> None:
    """Edit config.json as an attacker would (dropping the checksums that would catch it)."""
    config = json.loads((path / "config.json").read_text())
    del config["files"]
    if part == "head":
        config["head"] = record
    else:
        config["encoders"] = [{"key": key, **record}]
    (path / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize("part", ["head", "encoder"])
@pytest.mark.parametrize(
    "record",
    [{"module": "os", "class": "system"}, {"module": "subprocess", "class": "Popen"}],
    ids=["os.system", "subprocess.Popen"],
)
def test_config_naming_an_arbitrary_callable_does_not_run_it(
    tmp_path: Path, marker: Path, part: str, record: dict, monkeypatch: pytest.MonkeyPatch
):
    path, _ = _servable(tmp_path)
    _name_class(path, part, record)
    called = []
    monkeypatch.setattr("os.system", lambda *a, **k: called.append(a))
    monkeypatch.setattr("subprocess.Popen", lambda *a, **k: called.append(a))
    with pytest.raises(Exception):  # noqa: B017 - any refusal; the clear one is checked below
        SimilarityModel.load(path)
    assert called == []


def test_config_naming_a_non_head_class_gets_a_clear_error(tmp_path: Path):
    path, _ = _servable(tmp_path)
    _name_class(path, "head", {"module": "os", "class": "system"})
    with pytest.raises(TypeError, match="EncoderHead"):
        SimilarityModel.load(path)


@pytest.mark.parametrize("key", ["default", "../planted"])
def test_config_naming_a_pickle_loading_class_does_not_unpickle(
    tmp_path: Path, marker: Path, key: str
):
    pytest.importorskip("gensim")
    path, _ = _servable(tmp_path)
    target = path / "encoders" / key
    if target.is_dir():
        for file in target.iterdir():
            file.unlink()
        target.rmdir()
    _plant(target, marker)
    _name_class(path, "encoder", {"module": "gensim.models", "class": "KeyedVectors"}, key=key)
    with pytest.raises(Exception):  # noqa: B017 - refusing in any way is fine; running is not
        SimilarityModel.load(path)
    assert not marker.exists()
