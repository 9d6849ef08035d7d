"""Shared base of encoders that wrap a pre-trained network behind a `trainable` switch."""

from __future__ import annotations

from typing import TypeVar

from quaterion_models.encoders.encoder import Encoder

SelfEncoder = TypeVar("SelfEncoder", bound="PretrainedEncoder")


class PretrainedEncoder(Encoder):
    """An encoder around a pre-trained network; frozen unless `trainable=True`.

    A frozen network stays in eval mode even while the surrounding model trains, so dropout
    never perturbs embeddings that are meant to be fixed (and cached).

    Args:
        trainable: tune the network's weights during training (False: frozen, cacheable).
    """

    def __init__(self, trainable: bool = False):
        super().__init__()
        self._trainable = bool(trainable)

    @property
    def trainable(self) -> bool:
        return self._trainable

    def train(self: SelfEncoder, mode: bool = True) -> SelfEncoder:
        """Switch train/eval mode; a frozen encoder always stays in eval mode."""
        return super().train(mode and self._trainable)
