"""Training from a full cache: batches are index tensors into stored rows and targets.

`full_cache_loader(loader, ...)` is a DataLoader over the same sample indices, with the same
sampler (so shuffling, a user's batch sampler and Lightning's distributed sampler apply as
they would to `loader`), whose batches are cut from the split's pre-collated targets by the
loader class's `index_targets`; a row map per encoder turns object ids into cache rows.
Nothing reads the data set, and nothing runs per sample.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import BatchSampler, DataLoader

from quaterion.dataset.similarity_data_loader import SimilarityDataLoader


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
        if self._id_list is None:
            self._id_list = self._ids.tolist()
        return dict(self._meta[self._id_list[position]])

    def __iter__(self) -> Iterator[dict]:
        return (self[position] for position in range(len(self)))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, (list, RowMeta)) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]


class CachedBatches(torch.utils.data.Dataset):
    """Samples of a fully cached split, fetched a batch at a time (`__getitems__`):
    `(features, targets)` with `features = {"data": {encoder: rows}, "meta": RowMeta}`.

    Args:
        loader_class: the loader class whose `index_targets` turns sample indices into object ids
            and targets.
        targets: `collate_labels` of the whole split.
        row_maps: per encoder, the cache row of every object id.
        meta: one meta dict per object id, or None.
        num_samples: number of samples in the split.
    """

    def __init__(
        self,
        loader_class: type[SimilarityDataLoader],
        targets: dict[str, Tensor],
        row_maps: dict[str, Tensor],
        meta: list[dict] | None,
        num_samples: int,
    ):
        self.loader_class, self.targets, self.row_maps = loader_class, targets, row_maps
        self.meta, self.num_samples = meta, num_samples

    def __len__(self) -> int:
        return self.num_samples

    def __getitems__(self, indices: list[int]) -> tuple[dict[str, Any], dict[str, Tensor]]:
        index = torch.as_tensor(indices, dtype=torch.long)
        ids, targets = self.loader_class.index_targets(self.targets, index)
        data = {name: row_map[ids] for name, row_map in self.row_maps.items()}
        return {"data": data, "meta": RowMeta(ids, self.meta)}, targets


def _batch(batch: Any) -> Any:
    return batch


def full_cache_loader(
    loader: SimilarityDataLoader,
    targets: dict[str, Tensor],
    row_maps: dict[str, Tensor],
    meta: list[dict] | None,
) -> DataLoader:
    """A loader of the cached split `loader` reads, batching like `loader` (same sampler).

    Args:
        loader: the user's loader of this split.
        targets: `collate_labels` of the whole split.
        row_maps: per encoder, the cache row of every object id.
        meta: one meta dict per object id, or None.
    """
    data = CachedBatches(type(loader), targets, row_maps, meta, len(loader.dataset))
    # the same generator too: each epoch's iterator draws its seed from it first
    common = {"collate_fn": _batch, "generator": loader.generator}
    if type(loader.batch_sampler) is not BatchSampler:  # the user's own batch sampler
        return DataLoader(data, batch_sampler=loader.batch_sampler, **common)
    return DataLoader(
        data, loader.batch_size, sampler=loader.sampler, drop_last=loader.drop_last, **common
    )
