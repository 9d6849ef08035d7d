"""EfficientNetLite0Encoder: packaged ImageNet weights, grey images, servable round trip."""

import pytest
import torch

from quaterion_models import SimilarityModel
from quaterion_models.encoders.extras import EfficientNetLite0Encoder
from quaterion_models.encoders.extras.efficientnet_encoder import pretrained_lite0_weights
from quaterion_models.heads import EmptyHead

pytest.importorskip("efficientnet_lite_pytorch")


@pytest.fixture(scope="module")
def encoder():
    return EfficientNetLite0Encoder(image_size=64)


def test_grey_images_equal_replicated_rgb(encoder):
    torch.manual_seed(0)
    grey = torch.rand(3, 1, 28, 28)
    out = encoder(grey)
    assert out.shape == (3, 1280) and encoder.embedding_size == 1280
    assert torch.allclose(out, encoder(grey.repeat(1, 3, 1, 1)), atol=1e-6)
    assert not torch.allclose(out[0], out[1])  # different images, different features


def test_uses_packaged_imagenet_weights_and_stays_frozen(encoder):
    weights = pretrained_lite0_weights()
    assert torch.equal(encoder.network._conv_stem.weight, weights["_conv_stem.weight"])
    model = SimilarityModel(encoder, EmptyHead(1280))
    model.train()
    assert not encoder.network.training
    assert not any(p.requires_grad for p in encoder.parameters())


def test_round_trip(tmp_path, encoder):
    torch.manual_seed(1)
    model = SimilarityModel(encoder, EmptyHead(1280))
    images = [torch.rand(1, 28, 28) for _ in range(2)]
    before = model.encode(images, to_numpy=False)
    model.save(tmp_path / "servable")
    loaded = SimilarityModel.load(tmp_path / "servable")
    assert loaded.encoders["default"].image_size == 64
    assert torch.allclose(loaded.encode(images, to_numpy=False), before, atol=1e-5)


def test_bad_shapes_raise(encoder):
    with pytest.raises(ValueError, match=r"\[B, 1 or 3, H, W\]"):
        encoder(torch.rand(2, 28, 28))
    with pytest.raises(ValueError, match="at least 32"):
        EfficientNetLite0Encoder(image_size=16)
