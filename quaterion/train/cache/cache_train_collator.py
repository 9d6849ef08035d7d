"""Training collator when the cache is partial: cached encoders get rows, the others objects."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from quaterion.dataset.full_cache_loader import pick_rows
from quaterion.dataset.train_collator import TrainCollator
from quaterion_models.types import CollateFnType, MetaExtractorFnType


class CacheTrainCollator(TrainCollator):
    """`TrainCollator` whose cached encoders receive cache rows (by the row maps the fill
    built: key extractors ran there, once) instead of objects.

    Args:
        pre_collate_fn: the loader's `pre_collate_fn`.
        encoder_collates: each encoder's collate function, by name.
        meta_extractors: each encoder's meta extractor, by name.
        row_maps: per cached encoder, `[views, object ids]` the cache row of each object.
    """

    def __init__(self, pre_collate_fn: Callable, encoder_collates: dict[str, CollateFnType],
                 meta_extractors: dict[str, MetaExtractorFnType], row_maps: dict[str, Tensor]
                 ):  # fmt: skip
        super().__init__(pre_collate_fn, encoder_collates, meta_extractors)
        self.row_maps = row_maps

    def pre_encoder_collate(self, features: list[Any], ids: list[int], encoder_name: str) -> Any:
        row_map = self.row_maps.get(encoder_name)
        return features if row_map is None else pick_rows(row_map, torch.as_tensor(ids))
