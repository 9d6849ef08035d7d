"""Heads: output shapes, formulas against hand-written oracles, config and save/load round-trips."""

import json
import math

import pytest
import torch
from torch import nn

from quaterion_models import SimilarityModel
from quaterion_models.encoders import Encoder
from quaterion_models.heads import (
    EmptyHead,
    EncoderHead,
    GatedHead,
    LinearHead,
    SequentialHead,
    SkipConnectionHead,
    SoftmaxEmbeddingsHead,
    StackedProjectionHead,
    SwitchHead,
    WideningHead,
)
from quaterion_models.modules import ActivationFromFnName
from quaterion_models.modules.layer_specs import UnsupportedLayerError


def make_heads() -> list[EncoderHead]:
    return [
        SequentialHead(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 10), output_size=10),
        GatedHead(5),
        WideningHead(5),
        SkipConnectionHead(5),
        EmptyHead(5),
        SoftmaxEmbeddingsHead(output_groups=2, output_size_per_group=10, input_embedding_size=5),
        LinearHead(5),
        LinearHead(5, output_size=3, bias=False, dropout=0.2),
        StackedProjectionHead(5, output_sizes=[8, 4], activation_fn="gelu"),
    ]


def round_trip(head: EncoderHead, tmp_path) -> EncoderHead:
    head.save(str(tmp_path / "head"))
    return type(head).load(str(tmp_path / "head"))


@pytest.mark.parametrize("head", make_heads(), ids=lambda head: type(head).__name__)
def test_forward_shape_and_round_trip(head, tmp_path):
    torch.manual_seed(0)
    head.eval()
    inputs = torch.rand(3, 5)
    outputs = head(inputs)
    assert outputs.shape == (3, head.output_size)

    loaded = round_trip(head, tmp_path).eval()
    assert type(loaded) is type(head)
    assert loaded.get_config_dict() == head.get_config_dict()
    torch.testing.assert_close(loaded(inputs), outputs)
    assert sorted(p.name for p in (tmp_path / "head").iterdir()) == [
        "config.json",
        "weights.safetensors",
    ]


class StackEncoder(Encoder):
    """Frozen identity on `(..., 5)` tensors; collate stacks the records."""

    @property
    def trainable(self) -> bool:
        return False

    @property
    def embedding_size(self) -> int:
        return 5

    def get_collate_fn(self):
        return torch.stack

    def forward(self, batch):
        return batch

    def save(self, output_path):
        pass

    @classmethod
    def load(cls, input_path):
        return cls()


@pytest.mark.parametrize("head", make_heads(), ids=lambda head: type(head).__name__)
def test_similarity_model_round_trip_with_one_multi_row_record(head, tmp_path):
    torch.manual_seed(9)
    model = SimilarityModel(encoders=StackEncoder(), head=head)
    record = torch.rand(3, 5)  # ONE record: the batch axis is removed again by encode
    before = model.encode(record, to_numpy=False)
    assert before.shape == (3, head.output_size)
    model.save(tmp_path / "model")
    assert (tmp_path / "model" / "config.json").is_file()
    loaded = SimilarityModel.load(tmp_path / "model")
    assert list(loaded.encoders) == ["default"]
    assert type(loaded.encoders["default"]) is StackEncoder and type(loaded.head) is type(head)
    torch.testing.assert_close(loaded.encode(record, to_numpy=False), before)


def test_gated_head_starts_at_tanh_two():
    inputs = torch.tensor([[1.0, -2.0, 4.0]])
    expected = inputs * math.tanh(2.0)  # 0.9640 per dimension
    torch.testing.assert_close(GatedHead(3)(inputs), expected)


def test_skip_connection_head_matches_loop_oracle():
    torch.manual_seed(1)
    head = SkipConnectionHead(4, n_layers=2)
    inputs = torch.randn(3, 4)
    expected = inputs.clone()
    for index in range(2):
        fc = getattr(head, f"fc_{index}")
        gate = 1 / (1 + math.exp(4.0))  # sigmoid(-4.0) = 0.0180
        expected = (expected @ fc.weight.T + fc.bias) * gate + expected
    torch.testing.assert_close(head(inputs), expected)
    assert head.get_config_dict() == {
        "input_embedding_size": 4,
        "dropout": 0.0,
        "skip_dropout": 0.0,
        "n_layers": 2,
    }


def test_softmax_head_groups_sum_to_one_for_any_leading_shape():
    torch.manual_seed(2)
    head = SoftmaxEmbeddingsHead(output_groups=3, output_size_per_group=4, input_embedding_size=5)
    inputs = torch.randn(2, 6, 5)
    outputs = head(inputs)
    assert outputs.shape == (2, 6, 12)
    torch.testing.assert_close(outputs.view(2, 6, 3, 4).sum(-1), torch.ones(2, 6, 3))
    logits = head.projection_layer(inputs)[0, 0, 4:8]
    torch.testing.assert_close(outputs[0, 0, 4:8], logits.exp() / logits.exp().sum())


def test_stacked_projection_head_has_activation_between_layers_only():
    torch.manual_seed(3)
    head = StackedProjectionHead(5, output_sizes=[6, 2], activation_fn="relu")
    first, activation, last = head._stack
    assert isinstance(activation, ActivationFromFnName)
    inputs = torch.randn(4, 5)
    expected = torch.clamp(inputs @ first.weight.T + first.bias, min=0) @ last.weight.T + last.bias
    torch.testing.assert_close(head(inputs), expected)


def test_widening_head_config_and_legacy_output_sizes_key():
    head = WideningHead(5, expansion_factor=2.0)
    assert [layer.out_features for layer in head._stack if isinstance(layer, nn.Linear)] == [10, 5]
    config = head.get_config_dict()
    assert config == {
        "input_embedding_size": 5,
        "dropout": 0.0,
        "activation_fn": "relu",
        "expansion_factor": 2.0,
    }
    assert WideningHead(**config, output_sizes=[10, 5]).output_size == 5


def test_linear_head_defaults_to_input_width_and_honours_bias():
    torch.manual_seed(4)
    assert LinearHead(6).output_size == 6
    head = LinearHead(6, output_size=2, bias=False)
    assert head.layer.bias is None
    inputs = torch.randn(3, 6)
    torch.testing.assert_close(head(inputs), inputs @ head.layer.weight.T)


def test_dropout_is_applied_in_training_only():
    torch.manual_seed(5)
    head = EmptyHead(1000, dropout=0.5)
    inputs = torch.ones(1, 1000)
    assert (head(inputs) == 0).any()
    head.eval()
    torch.testing.assert_close(head(inputs), inputs)
    with pytest.raises(ValueError, match="dropout"):
        EmptyHead(3, dropout=1.5)


def test_sequential_head_round_trips_common_layers_without_pickle(tmp_path):
    torch.manual_seed(6)
    head = SequentialHead(
        nn.Linear(5, 8),
        nn.LayerNorm(8, eps=1e-3),
        nn.GELU(approximate="tanh"),
        nn.Dropout(0.1),
        nn.BatchNorm1d(8, momentum=0.3),
        nn.Sequential(nn.Linear(8, 8, bias=False), nn.Tanh()),
        ActivationFromFnName("relu"),
        nn.Identity(),
        nn.LeakyReLU(0.2),
        nn.Hardtanh(-2.0, 2.0),
        nn.Linear(8, 3),
        output_size=3,
        dropout=0.1,
    )
    head(torch.randn(16, 5))  # updates BatchNorm running statistics
    head.eval()
    inputs = torch.randn(4, 5)
    loaded = round_trip(head, tmp_path).eval()
    torch.testing.assert_close(loaded(inputs), head(inputs))
    assert repr(loaded) == repr(head)
    config = json.loads((tmp_path / "head" / "config.json").read_text())
    assert config["layers"][1] == {
        "module": "torch.nn.modules.normalization",
        "class": "LayerNorm",
        "kwargs": {"normalized_shape": [8], "eps": 0.001},
    }


def test_sequential_head_rejects_unknown_layers_with_a_fix():
    class Custom(nn.Module):
        def forward(self, x):
            return x

    head = SequentialHead(nn.Linear(5, 5), Custom(), output_size=5)
    with pytest.raises(UnsupportedLayerError, match=r"_sequential\.1 \(.*Custom\).*EncoderHead"):
        head.get_config_dict()


def test_sequential_head_load_refuses_unlisted_classes(tmp_path):
    head = SequentialHead(nn.Linear(2, 2), output_size=2)
    head.save(str(tmp_path))
    config = json.loads((tmp_path / "config.json").read_text())
    config["layers"][0] = {"module": "os", "class": "system", "kwargs": {"command": "true"}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="os.system is not supported"):
        SequentialHead.load(str(tmp_path))


def test_sequential_head_behaves_like_a_sequential():
    head = SequentialHead(nn.Linear(3, 3), nn.ReLU(), output_size=3)
    assert head.append(nn.Tanh()) is head
    assert len(head) == 3 and isinstance(head[1], nn.ReLU)
    head[1] = nn.GELU()
    del head[0]
    assert [type(layer) for layer in head] == [nn.GELU, nn.Tanh]
    inputs = torch.randn(2, 3)
    torch.testing.assert_close(head(inputs), torch.tanh(nn.functional.gelu(inputs)))


def shift_head(shift: list[float]) -> LinearHead:
    """`x + shift` as a LinearHead (identity weight, bias = shift)."""
    head = LinearHead(len(shift))
    with torch.no_grad():
        head.layer.weight.copy_(torch.eye(len(shift)))
        head.layer.bias.copy_(torch.tensor(shift))
    return head


def make_switch_head() -> SwitchHead:
    return SwitchHead({"a": shift_head([0, 0, 1]), "b": shift_head([0, 2, 0])}, 3)


SWITCH_INPUTS = torch.tensor([[k, 0.0, 0.0] for k in range(1, 6)])
SWITCH_META = [{"encoder": key} for key in "babba"]
SWITCH_EXPECTED = torch.tensor(
    [[1.0, 2, 0], [2, 0, 1], [3, 2, 0], [4, 2, 0], [5, 0, 1]]  # worked by hand
)


def test_switch_head_routes_rows_and_keeps_order():
    head = make_switch_head()
    torch.testing.assert_close(head(SWITCH_INPUTS, meta=SWITCH_META), SWITCH_EXPECTED)
    torch.testing.assert_close(head.transform(SWITCH_INPUTS, meta=SWITCH_META), SWITCH_EXPECTED)
    assert head.output_size == 3


def test_switch_head_round_trip(tmp_path):
    loaded = round_trip(make_switch_head(), tmp_path)
    assert isinstance(loaded._heads["a"], LinearHead)
    torch.testing.assert_close(loaded(SWITCH_INPUTS, meta=SWITCH_META), SWITCH_EXPECTED)


def test_switch_head_errors_name_the_problem():
    head = make_switch_head()
    with pytest.raises(ValueError, match="meta dict with an 'encoder' key.*got None"):
        head(SWITCH_INPUTS)
    with pytest.raises(ValueError, match=r"Row 1.*\['a', 'b'\]"):
        head(SWITCH_INPUTS[:2], meta=[{"encoder": "a"}, {"encoder": "c"}])
    with pytest.raises(ValueError, match="share one output_size"):
        SwitchHead({"a": LinearHead(3), "b": LinearHead(3, output_size=2)}, 3)
