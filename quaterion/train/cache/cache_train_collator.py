"""Training collator when the cache is partial: cached encoders get rows, the others objects."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import torch

from quaterion.dataset.train_collator import TrainCollator
from quaterion.train.cache.cache_encoder import CachedObjects
from quaterion_models.types import CollateFnType, MetaExtractorFnType


class CacheTrainCollator(TrainCollator):
    """`TrainCollator` whose cached encoders receive `CachedObjects(rows, objects)`.

    A cached encoder's row is its object id plus the split's `row_offsets[name]` (default keys)
    or the row its key got during the fill (`key_rows[name]`, keys from `key_extractors`).
    Trainable encoders get their objects as usual. Built by `setup_cache`, one per split.
    """

    def __init__(
        self,
        pre_collate_fn: Callable,
        encoder_collates: dict[str, CollateFnType],
        meta_extractors: dict[str, MetaExtractorFnType],
        row_offsets: dict[str, int],
        key_extractors: dict[str, Callable[[Any], Hashable]],
        key_rows: dict[str, dict[Hashable, int]],
    ):
        super().__init__(pre_collate_fn, encoder_collates, meta_extractors)
        self.row_offsets = row_offsets
        self.key_extractors = key_extractors
        self.key_rows = key_rows

    def pre_encoder_collate(self, features: list[Any], ids: list[int], encoder_name: str) -> Any:
        offset = self.row_offsets.get(encoder_name)
        if offset is None:
            return features
        if encoder_name in self.key_extractors:
            rows = torch.tensor(
                [self._row_of_key(encoder_name, obj) for obj in features], dtype=torch.long
            )
        else:
            rows = torch.as_tensor(ids, dtype=torch.long)
        return CachedObjects(rows + offset, features)

    def _row_of_key(self, encoder_name: str, obj: Any) -> int:
        key = self.key_extractors[encoder_name](obj)
        try:
            return self.key_rows[encoder_name][key]
        except KeyError:
            raise KeyError(
                f"Cache key {key!r} of encoder '{encoder_name}' was not seen when the cache was "
                "filled: the data changed after setup_cache; call Quaterion.fit again to refill"
            ) from None
