"""`CacheEncoder`: the base of encoders that answer from stored embeddings of a frozen encoder."""

from __future__ import annotations

from torch import Tensor

from quaterion.train.cache.cache_config import KeyExtractorType
from quaterion_models.encoders import Encoder
from quaterion_models.types import CollateFnType, MetaExtractorFnType

__all__ = ["CacheEncoder", "KeyExtractorType"]


def _rows(rows: Tensor) -> Tensor:
    return rows


class CacheEncoder(Encoder):
    """Wraps a frozen encoder, or the frozen bottom (`frozen_lower`) of a partly trainable one;
    `forward` takes cache rows (a LongTensor [B]) instead of objects. Its meta comes from the
    objects, through the wrapped encoder's extractor. Saving saves the wrapped encoder; a cache
    wrapper is never loaded.

    Args:
        encoder: the frozen (or partly trainable) encoder to wrap.
    """

    def __init__(self, encoder: Encoder):
        if encoder.trainable and encoder.frozen_lower is None:
            raise ValueError(
                f"Trainable encoder can't be cached: {type(encoder).__name__}.trainable is True; "
                "freeze it (trainable=False) or leave it out of the cache configuration"
            )
        super().__init__()
        self._encoder, self._lower = encoder, encoder.frozen_lower

    @property
    def wrapped_encoder(self) -> Encoder:
        """The frozen encoder whose embeddings are cached."""
        return self._encoder

    @property
    def fill_encoder(self) -> Encoder:
        """What the fill runs: the frozen encoder, or a partly trainable one's frozen bottom."""
        return self._encoder if self._lower is None else self._lower

    @property
    def trainable(self) -> bool:
        return self._lower is not None

    @property
    def embedding_size(self) -> int:
        return self._encoder.embedding_size

    @property
    def is_filled(self) -> bool:
        """Whether the cache holds rows to answer from."""
        raise NotImplementedError(f"{type(self).__name__} must define `is_filled`")

    def get_collate_fn(self) -> CollateFnType:
        """Training batches carry cache rows [B], already collated."""
        return _rows

    def get_meta_extractor(self) -> MetaExtractorFnType:
        """Meta of the objects, by the wrapped encoder's own extractor."""
        return self._encoder.get_meta_extractor()

    def save(self, output_path: str) -> None:
        """Save the wrapped encoder (a servable never contains a cache)."""
        self._encoder.save(output_path)

    @classmethod
    def load(cls, input_path: str) -> Encoder:
        raise ValueError(
            "Cached encoder does not support loading; load the wrapped encoder's class instead"
        )
