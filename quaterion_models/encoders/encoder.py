"""Base class of every encoder (the part of the model that turns raw records into vectors)."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn
from torch.utils.data import default_collate

from quaterion_models.types import CollateFnType, MetaExtractorFnType, TensorInterchange


class Encoder(nn.Module):
    """Raw records -> `(B, embedding_size)` embeddings.

    Subclasses implement `trainable`, `embedding_size`, `forward`, `save` and `load`, and
    usually `get_collate_fn` (records -> model input). A non-trainable encoder is frozen by
    `SimilarityModel` and can be cached during training.
    """

    @property
    def trainable(self) -> bool:
        """Whether the weights are tuned during training (False: frozen and cacheable)."""
        raise NotImplementedError(f"{type(self).__name__} must define the `trainable` property")

    @property
    def embedding_size(self) -> int:
        """Width of the embeddings `forward` returns."""
        raise NotImplementedError(
            f"{type(self).__name__} must define the `embedding_size` property"
        )

    @property
    def frozen_lower(self) -> Encoder | None:
        """The frozen bottom of a partly trainable encoder, or None (the default: no split).

        Its `forward` returns `(values [B, T, D], mask [B, T])`; the cache stores each object's
        unmasked values once, and `forward_upper` computes the embeddings from them.
        """
        return None

    def forward_upper(self, values: Tensor, mask: Tensor) -> Tensor:
        """Embeddings `[B, embedding_size]` from the output of `frozen_lower` (padded again).

        Args:
            values: `[B, T, D]` output of the frozen bottom.
            mask: `[B, T]`, 1 where `values` holds a real position.
        """
        raise NotImplementedError(f"{type(self).__name__} has no frozen_lower to continue from")

    def disable_gradients_if_required(self) -> None:
        """Freeze every parameter when the encoder is not trainable."""
        if not self.trainable:
            for parameter in self.parameters():
                parameter.requires_grad = False

    def get_collate_fn(self) -> CollateFnType:
        """Function turning a list of raw records into `forward`'s input (picklable)."""
        return default_collate

    @classmethod
    def extract_meta(cls, batch: list[Any]) -> list[dict]:
        """One meta dict per raw record, passed to the head (empty by default).

        Args:
            batch: raw records.

        Returns:
            one dict per record.
        """
        return [{} for _ in batch]

    def get_meta_extractor(self) -> MetaExtractorFnType:
        """Function producing per-record meta for a list of raw records (picklable)."""
        return self.extract_meta

    def forward(self, batch: TensorInterchange) -> Tensor:
        """Collated batch -> `(B, embedding_size)`.

        Args:
            batch: the output of `get_collate_fn()` for a list of records.

        Returns:
            `(B, embedding_size)` embeddings.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement `forward`")

    def save(self, output_path: str) -> None:
        """Persist whatever `load` needs into the existing directory `output_path`.

        Args:
            output_path: an existing directory, private to this encoder.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement `save`")

    @classmethod
    def load(cls, input_path: str) -> Encoder:
        """Rebuild the encoder from a directory written by `save`.

        Args:
            input_path: a directory written by `save`.

        Returns:
            the encoder.
        """
        raise NotImplementedError(f"{cls.__name__} must implement the `load` classmethod")
