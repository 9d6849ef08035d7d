"""Training from a full cache: batches are index tensors into stored rows and into targets
collated once (`index_targets`), drawn by the given loader's sampler; nothing reads the data set,
and nothing runs per sample."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import BatchSampler, DataLoader

from quaterion.dataset.similarity_data_loader import SimilarityDataLoader


def pick_rows(row_map: Tensor, ids: Tensor) -> Tensor:
    """Cache rows of objects `ids` [B]: one view per object, drawn at random when there are several.

    Args:
        row_map: `[views, object ids]` the row of each view of each object.
        ids: `[B]` object ids.
    """
    if len(row_map) == 1:
        return row_map[0][ids]
    return row_map[torch.randint(len(row_map), ids.shape), ids]


class RowMeta:
    """The `meta` of a full-cache batch: one dict per object, looked up only when read.
    Deliberately not a `Sequence`: Lightning's batch transfer walks sequences item by item,
    which would cost more than the whole training step for a batch of empty dicts.

    Args:
        ids: `[B]` object ids of the batch.
        meta: one meta dict per object id of the split, or None when every dict is empty.
    """

    def __init__(self, ids: Tensor, meta: list[dict] | None):
        self._ids, self._meta, self._id_list = ids, meta, None

    def __len__(self) -> int:
        return len(self._ids)

    def __getitem__(self, position: int) -> dict:
        if self._meta is None:
            return {}
        self._id_list = self._id_list or self._ids.tolist()  # once: a tensor read costs a µs
        return dict(self._meta[self._id_list[position]])

    def __iter__(self) -> Iterator[dict]:
        return (self[position] for position in range(len(self)))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, (list, RowMeta)) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]


class CachedBatches(torch.utils.data.Dataset):
    """A fully cached split, read a batch at a time (`__getitems__`): `(features, targets)`,
    `features = {"data": {encoder: rows}, "meta": RowMeta}`.

    Args:
        loader: the split's loader (its class's `index_targets`, its data set's length).
        targets: `collate_labels` of the whole split.
        row_maps: per encoder, `[views, object ids]` the cache row of each view of each object.
        meta: one meta dict per object id, or None.
    """

    def __init__(self, loader: SimilarityDataLoader, targets: dict[str, Tensor],
                 row_maps: dict[str, Tensor], meta: list[dict] | None):  # fmt: skip
        self.index_targets, self.size = type(loader).index_targets, len(loader.dataset)
        self.targets, self.row_maps, self.meta = targets, row_maps, meta

    def __len__(self) -> int:
        return self.size

    def __getitems__(self, indices: list[int]) -> tuple[dict[str, Any], dict[str, Tensor]]:
        ids, targets = self.index_targets(self.targets, torch.as_tensor(indices, dtype=torch.long))
        data = {name: pick_rows(row_map, ids) for name, row_map in self.row_maps.items()}
        return {"data": data, "meta": RowMeta(ids, self.meta)}, targets


def _batch(batch: Any) -> Any:
    return batch


def full_cache_loader(
    loader: SimilarityDataLoader, targets: dict, row_maps: dict[str, Tensor], meta: list | None
) -> DataLoader:
    """A loader of the cached split `loader` reads, batching like `loader` (same sampler).

    Args:
        loader: the user's loader of this split.
        targets: `collate_labels` of the whole split.
        row_maps: per encoder, `[views, object ids]` (or `[object ids]`) the cache rows.
        meta: one meta dict per object id, or None.
    """
    row_maps = {name: row_map.view(-1, row_map.shape[-1]) for name, row_map in row_maps.items()}
    data = CachedBatches(loader, targets, row_maps, meta)
    # the same generator too: each epoch's iterator draws its seed from it first
    common = {"collate_fn": _batch, "generator": loader.generator}
    if type(loader.batch_sampler) is not BatchSampler:  # the user's own batch sampler
        return DataLoader(data, batch_sampler=loader.batch_sampler, **common)
    return DataLoader(data, loader.batch_size, sampler=loader.sampler, drop_last=loader.drop_last,
                      **common)  # fmt: skip
