"""ONNX export of whole SimilarityModels, checked against torch with onnxruntime."""

import os
import stat
import sys

import pytest
import torch
from torch import nn

from quaterion.export import OnnxSimilarityModel, export_onnx, onnx_inputs
from quaterion_models import SimilarityModel
from quaterion_models.encoders import Encoder
from quaterion_models.heads import GatedHead, LinearHead, SwitchHead

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


class VectorEncoder(Encoder):
    """Records are float vectors; collate stacks them; a trainable MLP embeds them."""

    def __init__(self, size_in: int = 6, size_out: int = 4):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(size_in, 8), nn.Tanh(), nn.Linear(8, size_out))
        self.size_out = size_out

    @property
    def trainable(self):
        return True

    @property
    def embedding_size(self):
        return self.size_out

    def get_collate_fn(self):
        return torch.stack

    def forward(self, batch):
        return self.net(batch)


class TokensEncoder(VectorEncoder):
    def get_collate_fn(self):
        return list


def assert_parity(model, path, records):
    runner = OnnxSimilarityModel(path, model.get_collate_fn())
    onnx_out = torch.from_numpy(runner.encode(records, batch_size=len(records)))
    torch_out = model.encode(records, batch_size=len(records), to_numpy=False)
    assert onnx_out.shape == torch_out.shape
    assert (onnx_out - torch_out).abs().max() <= 1e-4
    return runner


def test_tensor_encoders_parity_with_dynamic_batch(tmp_path):
    torch.manual_seed(1)
    model = SimilarityModel({"b": VectorEncoder(6, 3), "a": VectorEncoder(6, 2)}, LinearHead(5, 4))
    path = export_onnx(model, tmp_path / "two.onnx", [torch.randn(6) for _ in range(2)])
    assert os.listdir(tmp_path) == ["two.onnx"]  # no temporary leftovers
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # readable as any saved file
    runner = assert_parity(model, path, [torch.randn(6) for _ in range(7)])
    assert runner.input_names == ["a", "b"]  # several encoders: inputs named by encoder key
    with pytest.raises(ValueError, match=r"Missing ONNX inputs \['b'\]"):
        runner.run({"a": torch.randn(2, 6).numpy()})


def test_single_encoder_input_names():
    assert list(onnx_inputs({"default": torch.ones(2, 3)})) == ["input"]
    tokens = {"input_ids": torch.ones(2, 3), "attention_mask": torch.ones(2, 3)}
    assert list(onnx_inputs({"default": tokens})) == ["attention_mask", "input_ids"]
    assert list(onnx_inputs({"t": tokens, "i": torch.ones(2, 1)})) == [
        "i", "t.attention_mask", "t.input_ids",
    ]  # fmt: skip


def test_minilm_with_head_parity(tmp_path):
    extras = pytest.importorskip("quaterion_models.encoders.extras")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.manual_seed(2)
    encoder = extras.HuggingFaceEncoder(extras.minilm_path(), normalize=True)
    model = SimilarityModel(encoder, LinearHead(384, 32))
    path = export_onnx(model, tmp_path / "minilm.onnx", ["short one", "a somewhat longer example"])
    records = [
        "Similarity learning fine-tunes a head on top of frozen encoders.",
        "cat",
        "The exported graph must accept other batch sizes and lengths than the example.",
    ]
    runner = assert_parity(model, path, records)
    assert runner.input_names == ["attention_mask", "input_ids"]


def test_unexportable_models_and_bad_calls_raise(tmp_path):
    vectors = [torch.randn(6) for _ in range(3)]
    with pytest.raises(TypeError, match="tensor or a dict of tensors"):
        export_onnx(SimilarityModel(TokensEncoder(), GatedHead(4)), tmp_path / "x.onnx", vectors)
    model = SimilarityModel(VectorEncoder(), GatedHead(4))
    with pytest.raises(ValueError, match="at least 2 raw records"):
        export_onnx(model, tmp_path / "x.onnx", vectors[:1])
    switch = SwitchHead({"a": GatedHead(4), "b": GatedHead(4)}, input_embedding_size=4)
    with pytest.raises(ValueError, match="SwitchEncoder / SwitchHead"):
        export_onnx(SimilarityModel(VectorEncoder(), switch), tmp_path / "x.onnx", vectors)
    assert not list(tmp_path.iterdir())
    with pytest.raises(FileNotFoundError, match="export_onnx"):
        OnnxSimilarityModel(tmp_path / "missing.onnx", model.get_collate_fn())


def test_missing_exporter_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    model = SimilarityModel(VectorEncoder(), GatedHead(4))
    with pytest.raises(ImportError, match=r"quaterion\[onnx\]"):
        export_onnx(model, tmp_path / "m.onnx", [torch.randn(6) for _ in range(2)])


def test_minilm_with_trained_top_layer_parity(tmp_path, fast_trainer):
    """trainable_layers=1, a few steps on cached lower layers: the servable's `encode` gives
    the embeddings training computed, and its ONNX graph gives the same."""
    extras = pytest.importorskip("quaterion_models.encoders.extras")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from quaterion import Quaterion, TrainableModel
    from quaterion.dataset import GroupSimilarityDataLoader, SimilarityGroupSample
    from quaterion.loss import TripletLoss
    from quaterion.train.cache import CacheConfig, CacheType

    texts = [
        "a small dog barks", "the puppy is playing in the garden all day", "dogs chase cats",
        "my hound sleeps", "stock prices fell sharply on monday", "the market rallied",
        "investors sold shares", "bonds and equities",
    ]  # fmt: skip

    class TopLayerModel(TrainableModel):
        def configure_encoders(self):
            return extras.SentenceTransformerEncoder(extras.minilm_path(), trainable_layers=1)

        def configure_caches(self):
            return CacheConfig(CacheType.CPU, batch_size=8)

        def configure_head(self, input_embedding_size):
            return LinearHead(input_embedding_size, output_size=16)

        def configure_loss(self):
            return TripletLoss(mining="hard")

        def configure_optimizers(self):
            return torch.optim.Adam(self.model.parameters(), lr=1e-3)

    def loader():
        samples = [SimilarityGroupSample(obj=text, group=i // 4) for i, text in enumerate(texts)]
        return GroupSimilarityDataLoader(samples, batch_size=4, shuffle=True)

    torch.manual_seed(3)
    model = TopLayerModel()
    top = "model.0.model.encoder.layer.5.attention.self.query.weight"
    before = dict(model.model.encoders["default"].named_parameters())[top].detach().clone()
    Quaterion.fit(model, fast_trainer(max_epochs=2), loader())
    trained_top = dict(model.model.encoders["default"].named_parameters())[top].detach()
    assert (trained_top - before).abs().max() > 1e-4  # the top layer really changed

    model.eval()  # the embeddings training computes: cached bottom + trained top + head
    model.setup_dataloader(train_loader := loader())
    model.setup_cache(None, train_loader, None)
    with torch.no_grad():
        trained = model.model.head(model.model.encoders["default"].embeddings("train"), meta=None)
    model.unwrap_cache()
    model.save_servable(str(tmp_path / "servable"))

    servable = SimilarityModel.load(str(tmp_path / "servable"))
    assert torch.equal(dict(servable.encoders["default"].named_parameters())[top], trained_top)
    encoded = servable.encode(texts, batch_size=3, to_numpy=False)
    assert (encoded - trained).abs().max() <= 1e-5
    path = export_onnx(servable, tmp_path / "top1.onnx", ["short one", "a somewhat longer one"])
    assert_parity(servable, path, [*texts, "Other batch sizes and lengths than the example."])
