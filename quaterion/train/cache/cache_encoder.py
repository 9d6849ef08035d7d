"""`CacheEncoder`: the base of encoders that answer from stored embeddings of a frozen encoder."""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

from torch import Tensor

from quaterion.train.cache.cache_config import KeyExtractorType
from quaterion_models.encoders import Encoder
from quaterion_models.types import CollateFnType, MetaExtractorFnType

__all__ = ["CacheEncoder", "CachedObjects", "KeyExtractorType"]


class CachedObjects(NamedTuple):
    """What a training collator hands a cache encoder: cache rows [B] plus the raw objects
    (kept for the meta extractor; never collated)."""

    rows: Tensor
    objects: list[Any]


def _rows_of(batch: CachedObjects | Tensor) -> Tensor:
    return batch.rows if isinstance(batch, CachedObjects) else batch


def _meta_of(batch: CachedObjects, extract_meta: MetaExtractorFnType) -> list[dict]:
    return extract_meta(batch.objects)


class CacheEncoder(Encoder):
    """Wraps a frozen encoder; `forward` takes cache rows (a LongTensor [B]) instead of objects.

    Subclasses decide where the rows live and implement `forward`, `is_filled` and
    `reset_cache`. Saving saves the wrapped encoder; a cache wrapper is never loaded.
    """

    def __init__(self, encoder: Encoder):
        if encoder.trainable:
            raise ValueError(
                f"Trainable encoder can't be cached: {type(encoder).__name__}.trainable is True; "
                "freeze it (trainable=False) or leave it out of the cache configuration"
            )
        super().__init__()
        self._encoder = encoder

    @property
    def wrapped_encoder(self) -> Encoder:
        """The frozen encoder whose embeddings are cached."""
        return self._encoder

    @property
    def trainable(self) -> bool:
        return False

    @property
    def embedding_size(self) -> int:
        return self._encoder.embedding_size

    @property
    def is_filled(self) -> bool:
        """Whether the cache holds rows to answer from."""
        raise NotImplementedError(f"{type(self).__name__} must define `is_filled`")

    def reset_cache(self) -> None:
        """Drop every stored row."""
        raise NotImplementedError(f"{type(self).__name__} must implement `reset_cache`")

    def get_collate_fn(self) -> CollateFnType:
        """Training batches carry cache rows: `CachedObjects` -> its rows [B]."""
        return _rows_of

    def get_meta_extractor(self) -> MetaExtractorFnType:
        """Meta comes from the raw objects, through the wrapped encoder's own extractor."""
        return partial(_meta_of, extract_meta=self._encoder.get_meta_extractor())

    def save(self, output_path: str) -> None:
        """Save the wrapped encoder (a servable never contains a cache)."""
        self._encoder.save(output_path)

    @classmethod
    def load(cls, input_path: str) -> Encoder:
        raise ValueError(
            "Cached encoder does not support loading; load the wrapped encoder's class instead"
        )
