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
        cache_type: where every frozen encoder not named in `mapping` is cached; None or
            `CacheType.NONE`: only `mapping` counts.
        mapping: per-encoder cache type; `CacheType.NONE` there disables caching of that encoder.
        key_extractors: maps an object to its cache key (duplicates share a row); one callable for
            all encoders or a dict per encoder name. Empty: the object id the loader assigns is the
            key.
        batch_size: batch size of the one inference pass that fills the cache.
        num_workers: loader workers of the fill pass; None inherits each source loader's
            `num_workers`.
        save_dir: directory that persists the cache between runs (reused only when the fingerprints
            of encoder and data match; stored rows open memory-mapped).
        storage_dtype: dtype of the stored rows (`torch.float16` or `torch.bfloat16` halve memory
            and files); None keeps the encoders' dtype. Training reads them back as float32.
    """

    # Cache type of every frozen encoder not named in `mapping`; None/NONE: only `mapping` counts.
    cache_type: CacheType | None = CacheType.AUTO
    # Per-encoder cache type; CacheType.NONE here disables caching of that encoder.
    mapping: dict[str, CacheType] = field(default_factory=dict)
    # Maps an object to its cache key (duplicates share a row); one callable for all encoders or
    # a dict per encoder name. Empty: the object id the loader assigns is the key.
    key_extractors: Union[KeyExtractorType, dict[str, KeyExtractorType]] = field(
        default_factory=dict
    )
    # Batch size of the one inference pass that fills the cache.
    batch_size: int | None = 32
    # Loader workers of the fill pass; None inherits each source loader's num_workers.
    num_workers: int | None = None
    # Directory that persists the cache between runs (reused only when fingerprints match;
    # stored rows open memory-mapped).
    save_dir: str | None = None
    # dtype of the stored rows (torch.float16 or torch.bfloat16 halve the memory and files);
    # None keeps the encoders' dtype. Training reads them back as float32.
    storage_dtype: torch.dtype | None = None

    def __post_init__(self) -> None:
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(
                f"CacheConfig.batch_size must be at least 1 (or None for the loader's batch "
                f"size), got {self.batch_size}"
            )
        if self.num_workers is not None and self.num_workers < 0:
            raise ValueError(
                f"CacheConfig.num_workers must be 0 or more (or None for the loader's), got "
                f"{self.num_workers}"
            )
