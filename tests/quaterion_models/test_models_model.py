"""SimilarityModel: forward, encode batching, modes, picklable collate, SwitchEncoder routing."""

import multiprocessing
import os
import pickle

import numpy as np
import pytest
import torch
from torch import nn

from quaterion_models import SimilarityModel
from quaterion_models.encoders import Encoder, SwitchEncoder
from quaterion_models.heads import EmptyHead, GatedHead, LinearHead, SwitchHead
from quaterion_models.model import DEFAULT_ENCODER_KEY, MetricModel
from quaterion_models.utils.files import read_json, write_json_atomic


class LinearEncoder(Encoder):
    """Records are `(5,)` tensors; a trainable linear map to 4 dims."""

    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(5, 4)

    @property
    def trainable(self) -> bool:
        return True

    @property
    def embedding_size(self) -> int:
        return 4

    def get_collate_fn(self):
        return torch.stack

    def forward(self, batch):
        return self.layer(batch)


class ConstantEncoder(Encoder):
    """Frozen; maps each record to `fill` repeated `size` times, whatever the record is."""

    def __init__(self, fill: float = 0.0, size: int = 3):
        super().__init__()
        self.fill, self.size = fill, size
        self.scale = nn.Parameter(torch.ones(1))

    @property
    def trainable(self) -> bool:
        return False

    @property
    def embedding_size(self) -> int:
        return self.size

    @classmethod
    def count(cls, batch):
        return len(batch)

    def get_collate_fn(self):
        return self.count

    def forward(self, batch):
        return torch.full((batch, self.size), self.fill) * self.scale

    def save(self, output_path):
        config = {"fill": self.fill, "size": self.size}
        write_json_atomic(os.path.join(output_path, "config.json"), config)

    @classmethod
    def load(cls, input_path):
        return cls(**read_json(os.path.join(input_path, "config.json"), "encoder config"))


class WordSwitchEncoder(SwitchEncoder):
    @classmethod
    def encoder_selection(cls, record):
        return {"zeros": "a", "ones": "b"}[record]


def linear_model(seed: int = 0) -> SimilarityModel:
    torch.manual_seed(seed)
    return SimilarityModel(LinearEncoder(), LinearHead(4, output_size=3))


def test_single_encoder_is_stored_under_default_key_and_frozen_when_not_trainable():
    model = SimilarityModel(ConstantEncoder(), EmptyHead(3))
    assert list(model.encoders) == [DEFAULT_ENCODER_KEY] == ["default"]
    assert not model.encoders["default"].scale.requires_grad
    assert linear_model().encoders["default"].layer.weight.requires_grad
    assert MetricModel is SimilarityModel
    assert set(model.state_dict()) == {"default.scale"}


@pytest.mark.parametrize("key", ["head", "encoders", "a.b", ""])
def test_invalid_encoder_key_is_rejected(key):
    with pytest.raises(ValueError, match=f"Invalid encoder key '{key}'"):
        SimilarityModel({key: ConstantEncoder()}, EmptyHead(3))


def test_forward_concatenates_in_sorted_key_order():
    encoders = {"b": ConstantEncoder(1.0, size=2), "a": ConstantEncoder(0.0, size=3)}
    assert SimilarityModel.get_encoders_output_size(encoders) == 5
    model = SimilarityModel(encoders, EmptyHead(5))
    collate = model.get_collate_fn()
    torch.testing.assert_close(
        model(collate(["x", "y"])), torch.tensor([[0.0, 0, 0, 1, 1], [0, 0, 0, 1, 1]])
    )


@pytest.mark.parametrize("batch_size", [1, 2, 7, 50])
def test_encode_is_independent_of_batch_size(batch_size):
    model = linear_model()
    records = [torch.randn(5, generator=torch.Generator().manual_seed(i)) for i in range(7)]
    expected = model.head(model.encoders["default"](torch.stack(records))).detach()
    result = model.encode(records, batch_size=batch_size, to_numpy=False)
    torch.testing.assert_close(result, expected)


def test_encode_single_record_numpy_and_empty_input():
    model = linear_model()
    record = torch.randn(5)
    single = model.encode(record)
    assert isinstance(single, np.ndarray) and single.shape == (1, 3)
    np.testing.assert_allclose(single, model.encode([record, record])[:1], rtol=1e-6)
    assert model.encode([], to_numpy=False).shape == (0, 3)
    with pytest.raises(ValueError, match="batch_size"):
        model.encode([record], batch_size=0)


def test_train_eval_return_self_and_encode_restores_mode():
    model = linear_model()
    assert model.eval() is model and model.train() is model
    model.head.dropout = nn.Dropout(0.9)  # encode must run in eval mode anyway
    records = [torch.randn(5) for _ in range(4)]
    first = model.encode(records, to_numpy=False)
    assert model.training
    torch.testing.assert_close(model.encode(records, to_numpy=False), first)
    model.eval()
    model.encode(records)
    assert not model.training
    model.train().encoders["default"].eval()  # mixed modes survive encode too
    model.encode(records)
    assert model.head.training and not model.encoders["default"].training


def test_encode_with_progress_bar_and_no_terminal(capsys, monkeypatch):
    model = linear_model()
    records = [torch.randn(5) for _ in range(5)]
    expected = model.encode(records, batch_size=2)
    np.testing.assert_allclose(model.encode(records, batch_size=2, show_progress=True), expected)
    monkeypatch.setenv("QUATERION_PROGRESS", "0")
    np.testing.assert_allclose(model.encode(records, batch_size=2, show_progress=True), expected)
    assert capsys.readouterr().out == ""


def test_collate_fn_is_picklable_without_the_model():
    encoder, head = ConstantEncoder(size=5), EmptyHead(5)
    encoder.unpicklable = lambda: None
    head.unpicklable = lambda: None
    model = SimilarityModel({"test": encoder}, head)
    with pytest.raises((pickle.PicklingError, AttributeError)):
        pickle.dumps(model)
    collate = model.get_collate_fn()
    with multiprocessing.get_context("fork").Pool(2) as pool:
        result = pool.map(collate, [[1, 2, 3], [4]])
    assert result[0]["data"]["test"] == 3 and result[1]["data"]["test"] == 1
    assert result[0]["meta"] == [{}, {}, {}]
    assert model(result[0]).shape == (3, 5)


def test_dict_encoders_save_load_keeps_keys_and_types(tmp_path):
    model = SimilarityModel({"test": ConstantEncoder(size=100)}, EmptyHead(100))
    model.save(tmp_path / "model")
    loaded = SimilarityModel.load(tmp_path / "model")
    assert list(loaded.encoders) == ["test"]
    assert type(loaded.encoders["test"]) is ConstantEncoder
    assert type(loaded.head) is EmptyHead


@pytest.mark.parametrize("head", [GatedHead(5), LinearHead(5, output_size=2)])
def test_save_load_gives_same_encodings(head, tmp_path):
    torch.manual_seed(7)
    model = SimilarityModel(ConstantEncoder(1.0, size=5), head)
    with torch.no_grad():
        for parameter in head.parameters():
            parameter.add_(torch.randn_like(parameter))
    model.save(tmp_path / "servable")
    loaded = SimilarityModel.load(tmp_path / "servable")
    torch.testing.assert_close(
        loaded.encode(["x", "y"], to_numpy=False), model.encode(["x", "y"], to_numpy=False)
    )


def switch_model() -> SimilarityModel:
    encoder = WordSwitchEncoder({"a": ConstantEncoder(0.0), "b": ConstantEncoder(1.0)})
    return SimilarityModel(encoder, EmptyHead(3))


WORDS = ["zeros", "zeros", "ones", "ones", "zeros", "zeros", "ones"]


def test_switch_encoder_routes_records_and_meta(tmp_path):
    model = switch_model()
    encoder = model.encoders["default"]
    assert encoder.get_meta_extractor()(WORDS[1:3]) == [{"encoder": "a"}, {"encoder": "b"}]
    expected = torch.tensor([0.0, 0, 1, 1, 0, 0, 1])
    torch.testing.assert_close(model.encode(WORDS, to_numpy=False)[:, 0], expected)
    model.save(tmp_path / "switch")
    loaded = SimilarityModel.load(tmp_path / "switch")
    assert set(loaded.encoders["default"].options) == {"a", "b"}
    torch.testing.assert_close(loaded.encode(WORDS, batch_size=3, to_numpy=False)[:, 0], expected)


def test_switch_encoder_rejects_unequal_sizes_and_unknown_keys():
    with pytest.raises(RuntimeError, match=r"inconsistent output size: \[2, 3\]"):
        WordSwitchEncoder({"a": ConstantEncoder(size=2), "b": ConstantEncoder(size=3)})

    class BadSelection(WordSwitchEncoder):
        @classmethod
        def encoder_selection(cls, record):
            return "c"

    collate = BadSelection({"a": ConstantEncoder(0.0), "b": ConstantEncoder(1.0)}).get_collate_fn()
    with pytest.raises(ValueError, match="'c'"):
        collate(["x"])


def test_switch_encoder_with_switch_head_end_to_end(tmp_path):
    torch.manual_seed(8)
    heads = {"a": LinearHead(3, output_size=2), "b": LinearHead(3, output_size=2)}
    encoder = WordSwitchEncoder({"a": ConstantEncoder(0.0), "b": ConstantEncoder(1.0)})
    model = SimilarityModel(encoder, SwitchHead(heads, input_embedding_size=3))
    result = model.encode(WORDS, to_numpy=False)
    torch.testing.assert_close(result[0], heads["a"].layer.bias.detach())
    torch.testing.assert_close(result[2], heads["b"].layer(torch.ones(3)).detach())
    model.save(tmp_path / "m")
    loaded = SimilarityModel.load(tmp_path / "m")
    torch.testing.assert_close(loaded.encode(WORDS, to_numpy=False), result)


def test_encode_of_records_an_encoder_cannot_collate_names_the_encoder_and_type():
    model = SimilarityModel({"text": ConstantEncoder(), "vector": LinearEncoder()}, EmptyHead(7))
    with pytest.raises(TypeError, match=r"Encoder 'vector' \(LinearEncoder\) .*type str") as error:
        model.encode(["a", "b"])
    assert isinstance(error.value.__cause__, TypeError)  # torch.stack's own message is kept


def test_switch_configs_naming_foreign_classes_or_path_keys_are_refused(tmp_path):
    switch_model().save(tmp_path / "switch")
    config_path = tmp_path / "switch" / "encoders" / "default" / "config.json"
    config = read_json(config_path, "switch config")
    foreign = {"a": {"module": "torch.nn", "class": "Linear"}, "b": config["encoders"]["b"]}
    write_json_atomic(config_path, {"encoders": foreign})
    with pytest.raises(TypeError, match=r"SwitchEncoder config .*torch\.nn\.Linear.*of Encoder"):
        WordSwitchEncoder.load(str(config_path.parent))
    write_json_atomic(config_path, {"encoders": {"../a": config["encoders"]["a"]}})
    with pytest.raises(ValueError, match=r"invalid key '\.\./a'"):
        WordSwitchEncoder.load(str(config_path.parent))

    head_config = SwitchHead({"a": EmptyHead(3)}, input_embedding_size=3).get_config_dict()
    head_config["heads"]["a"]["class"] = {"module": "torch.nn", "class": "Linear"}
    with pytest.raises(TypeError, match=r"SwitchHead config .*torch\.nn\.Linear.*EncoderHead"):
        SwitchHead.from_config(head_config)


def pad_chars(texts):
    """Texts -> char codes padded to the batch's longest text [B, T]."""
    width = max(map(len, texts))
    return torch.tensor([[ord(c) for c in text] + [0] * (width - len(text)) for text in texts])


class CharEncoder(Encoder):
    """Frozen: a text -> (sum of its char codes, its length); records each batch's padded width."""

    def __init__(self):
        super().__init__()
        self.widths: list[int] = []

    @property
    def trainable(self) -> bool:
        return False

    @property
    def embedding_size(self) -> int:
        return 2

    def get_collate_fn(self):
        return pad_chars

    def forward(self, batch):
        self.widths.append(batch.shape[1])
        return torch.stack([batch.sum(dim=1), (batch > 0).sum(dim=1)], dim=1).float()

    def save(self, output_path: str) -> None:
        pass

    @classmethod
    def load(cls, input_path: str) -> "CharEncoder":
        return cls()


def test_encode_batches_texts_by_length_and_keeps_the_callers_order():
    texts = ["a" * length for length in (1, 30, 2, 29, 3, 28, 4, 27)]
    texts = [text[:-1] + str(i) for i, text in enumerate(texts)]
    model = SimilarityModel(CharEncoder(), EmptyHead(2))
    embeddings = model.encode(texts, batch_size=2, to_numpy=False)
    expected = torch.tensor([[sum(map(ord, text)), len(text)] for text in texts]).float()
    assert torch.equal(embeddings, expected)  # oracle: each text on its own, in the given order
    encoder = model.encoders[DEFAULT_ENCODER_KEY]
    assert encoder.widths == [30, 28, 4, 2]  # longest first: 4 batches of similar lengths
    assert sum(encoder.widths) * 2 < 4 * 30 * 2  # given order: every batch padded to ~30
