"""What to cache and where: the user-facing cache configuration."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Union

import torch

KeyExtractorType = Callable[[Any], Hashable]


class CacheType(str, Enum):
    """Where cached embeddings live."""

    NONE = "none"  # do not cache
    AUTO = "auto"  # on the device the trainer runs on
    CPU = "cpu"  # in RAM
    GPU = "gpu"  # on the CUDA device (fails early when CUDA is unavailable)


@dataclass
class CacheConfig:
    """Which frozen encoders to cache, where, and how to fill the cache.

    Args:
        cache_type: where every frozen encoder not named in `mapping` is cached (None: only
            `mapping` counts).
        mapping: per-encoder cache type; `CacheType.NONE` disables caching of that encoder.
        key_extractors: object -> cache key (duplicates share a row), one for all encoders or a
            dict by encoder name; empty: the object id the loader assigns is the key.
        batch_size: batch size of the pass that fills the cache (None: the loader's).
        num_workers: loader workers of the fill (None: each loader's own).
        save_dir: directory that keeps the cache between runs (reused while the fingerprints of
            encoder and data match; opened memory-mapped).
        storage_dtype: dtype of the stored rows (`torch.float16` or `torch.bfloat16` halve them;
            None: the encoders'); training reads them as float32.
        views: augmented views cached per training object: the fill reads the training data
            `views` times (the dataset's own augmentation, random per read) and each read of an
            object in training draws one of its views (deterministic under a seed).
    """

    cache_type: CacheType | None = CacheType.AUTO
    mapping: dict[str, CacheType] = field(default_factory=dict)
    key_extractors: Union[KeyExtractorType, dict[str, KeyExtractorType]] = field(
        default_factory=dict
    )
    batch_size: int | None = 32
    num_workers: int | None = None
    save_dir: str | None = None
    storage_dtype: torch.dtype | None = None
    views: int = 1

    def __post_init__(self) -> None:
        for name, least, meaning in (("batch_size", 1, "None: the loader's batch size"),
                                     ("num_workers", 0, "None: the loader's"),
                                     ("views", 1, "1: no augmented views")):  # fmt: skip
            value = getattr(self, name)
            bad = value is not None or name == "views"  # None: inherit the loader's
            if bad and not (type(value) is int and value >= least):
                raise ValueError(f"CacheConfig.{name} must be an integer of at least {least} "
                                 f"({meaning}), got {value!r}")  # fmt: skip
        if self.views > 1 and self.key_extractors:
            raise ValueError(f"CacheConfig(views={self.views}) can't be combined with "
                             "key_extractors: augmented views of equal objects differ, so a key "
                             "can't name one row; drop one of them")  # fmt: skip
