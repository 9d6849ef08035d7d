"""Training from a full cache: batches are index tensors into stored rows and targets.

Every epoch draws an index permutation (or walks the user's own sampler), cuts it into batches
and turns each batch into object ids and targets with the loader class's `index_targets`; a row
map per encoder turns object ids into rows of its cached table. Nothing reads the data set, and
nothing runs per sample.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import BatchSampler, RandomSampler, SequentialSampler

from quaterion.dataset.similarity_data_loader import SimilarityDataLoader
from quaterion.utils.distributed import rank_and_world


class RowMeta:
    """The `meta` of a full-cache batch: one dict per object, looked up only when read.

    Deliberately not a `Sequence`: Lightning's batch transfer walks sequences item by item,
    which would cost more than the whole training step for a batch of empty dicts.
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


class EpochBatches:
    """Sample indices of one epoch, in batches, for this process.

    Single process: like a DataLoader (`shuffle` draws from `generator` or torch's global RNG).
    Several processes: like Lightning's DistributedSampler: every rank draws the same
    permutation (seed `PL_GLOBAL_SEED` + epoch), pads it to a multiple of the world size and
    takes every world-size-th index, so all ranks run the same number of steps. A user's own
    batch sampler is walked as given (under DDP each rank takes every world-size-th batch).
    """

    def __init__(
        self,
        num_samples: int,
        batch_size: int,
        shuffle: bool,
        drop_last: bool,
        generator: torch.Generator | None = None,
        batch_sampler: Iterable[list[int]] | None = None,
    ):
        self.num_samples, self.batch_size = num_samples, batch_size
        self.shuffle, self.drop_last = shuffle, drop_last
        self.generator, self.batch_sampler = generator, batch_sampler
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning before each epoch; seeds the distributed shuffle."""
        self.epoch = epoch

    def __len__(self) -> int:
        _, world = rank_and_world()
        if self.batch_sampler is not None:
            return len(self.batch_sampler) // world if world > 1 else len(self.batch_sampler)
        per_rank = math.ceil(self.num_samples / world)
        return (
            per_rank // self.batch_size if self.drop_last else math.ceil(per_rank / self.batch_size)
        )

    def __iter__(self) -> Iterator[Tensor]:
        rank, world = rank_and_world()
        if self.batch_sampler is not None:
            steps = len(self)
            for step, batch in enumerate(self.batch_sampler):
                if step // world >= steps:
                    break
                if step % world == rank:
                    yield torch.as_tensor(batch, dtype=torch.long)
            return
        if not self.shuffle:
            order = torch.arange(self.num_samples)
        elif world > 1:
            seed = int(os.environ.get("PL_GLOBAL_SEED", 0)) + self.epoch
            order = torch.randperm(self.num_samples, generator=torch.Generator().manual_seed(seed))
        else:
            order = torch.randperm(self.num_samples, generator=self.generator)
        if world > 1:
            padding = math.ceil(self.num_samples / world) * world - self.num_samples
            order = torch.cat([order, order.repeat(math.ceil(padding / len(order)) or 1)[:padding]])
            order = order[rank::world]
        batches = order.split(self.batch_size)
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches = batches[:-1]
        yield from batches


class FullCacheLoader:
    """Iterable of `(features, targets)` for a split whose every encoder is cached.

    `features = {"data": {encoder: rows [n_objects]}, "meta": RowMeta}`: `row_maps[encoder]`
    maps object ids to rows of that encoder's cache;
    `targets` are those of the loss, cut from the split's `targets` by `index_targets`.
    """

    def __init__(
        self,
        loader_class: type[SimilarityDataLoader],
        targets: dict[str, Tensor],
        row_maps: dict[str, Tensor],
        meta: list[dict] | None,
        batches: EpochBatches,
    ):
        self.loader_class, self.targets, self.row_maps, self.meta = (
            loader_class, targets, row_maps, meta
        )  # fmt: skip
        # Lightning calls `sampler.set_epoch` before each epoch and reads `batch_sampler` with it
        self.sampler, self.batch_sampler = batches, None

    @classmethod
    def like(
        cls,
        loader: SimilarityDataLoader,
        targets: dict[str, Tensor],
        row_maps: dict[str, Tensor],
        meta: list[dict] | None,
    ) -> FullCacheLoader:
        """The full-cache loader batching like `loader` (batch size, shuffle, drop_last, or its
        own batch sampler)."""
        sampler, batch_sampler, num_samples = (
            loader.sampler,
            loader.batch_sampler,
            len(loader.dataset),
        )
        standard = type(batch_sampler) is BatchSampler and (
            type(sampler) is SequentialSampler
            or type(sampler) is RandomSampler
            and not sampler.replacement
            and sampler.num_samples == num_samples
        )
        batches = (
            EpochBatches(
                num_samples,
                loader.batch_size,
                shuffle=isinstance(sampler, RandomSampler),
                drop_last=loader.drop_last,
                generator=getattr(sampler, "generator", None),
            )
            if standard
            else EpochBatches(
                num_samples,
                getattr(batch_sampler, "batch_size", None) or 1,
                shuffle=False,
                drop_last=False,
                batch_sampler=batch_sampler,
            )
        )
        return cls(type(loader), targets, row_maps, meta, batches)

    @property
    def batch_size(self) -> int:
        return self.sampler.batch_size

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[tuple[dict[str, Any], dict[str, Tensor]]]:
        for indices in self.sampler:
            ids, targets = self.loader_class.index_targets(self.targets, indices)
            data = {name: row_map[ids] for name, row_map in self.row_maps.items()}
            yield {"data": data, "meta": RowMeta(ids, self.meta)}, targets
