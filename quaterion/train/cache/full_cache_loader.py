"""Training from a full cache: batches are index tensors into stored rows and targets.

Every epoch draws an index permutation (or walks the user's own sampler), cuts it into
batches and turns each batch into rows and targets with the loader class's `index_targets`.
Nothing reads the data set, and nothing runs per sample.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from quaterion.dataset.similarity_data_loader import SimilarityDataLoader


def _rank_and_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class RowMeta:
    """The `meta` of a full-cache batch: one dict per object, looked up only when read.

    Deliberately not a `Sequence`: Lightning's batch transfer walks sequences item by item,
    which would cost more than the whole training step for a batch of empty dicts.
    """

    def __init__(self, rows: Tensor, meta: list[dict] | None):
        self._rows = rows
        self._meta = meta
        self._row_list: list[int] | None = None

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, position: int) -> dict:
        if self._meta is None:
            return {}
        if self._row_list is None:
            self._row_list = self._rows.tolist()
        return dict(self._meta[self._row_list[position]])

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
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.generator = generator
        self.batch_sampler = batch_sampler
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning before each epoch; seeds the distributed shuffle."""
        self.epoch = epoch

    def __len__(self) -> int:
        rank, world = _rank_and_world()
        if self.batch_sampler is not None:
            return len(self.batch_sampler) // world if world > 1 else len(self.batch_sampler)
        per_rank = math.ceil(self.num_samples / world)
        if self.drop_last:
            return per_rank // self.batch_size
        return math.ceil(per_rank / self.batch_size)

    def __iter__(self) -> Iterator[Tensor]:
        rank, world = _rank_and_world()
        if self.batch_sampler is not None:
            steps = len(self)
            for step, batch in enumerate(self.batch_sampler):
                if step // world >= steps:
                    break
                if step % world == rank:
                    yield torch.as_tensor(batch, dtype=torch.long)
            return
        order = self._order(world)  # [N]
        if world > 1:
            per_rank = math.ceil(self.num_samples / world)
            padding = per_rank * world - self.num_samples
            order = torch.cat([order, order.repeat(math.ceil(padding / len(order)) or 1)[:padding]])
            order = order[rank::world]  # [per_rank]
        batches = order.split(self.batch_size)
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches = batches[:-1]
        yield from batches

    def _order(self, world: int) -> Tensor:
        if not self.shuffle:
            return torch.arange(self.num_samples)
        if world > 1:
            seed = int(os.environ.get("PL_GLOBAL_SEED", 0)) + self.epoch
            return torch.randperm(self.num_samples, generator=torch.Generator().manual_seed(seed))
        return torch.randperm(self.num_samples, generator=self.generator)


class FullCacheLoader:
    """Iterable of `(features, targets)` for a split whose every encoder is cached.

    `features = {"data": {encoder: rows [n_objects]}, "meta": RowMeta}`; rows index the cache
    encoders' tables (this split starts at `row_offset`); `targets` are those of the loss.
    """

    def __init__(
        self,
        loader_class: type[SimilarityDataLoader],
        targets: dict[str, Tensor],
        encoder_names: list[str],
        row_offset: int,
        meta: list[dict] | None,
        batches: EpochBatches,
    ):
        self.loader_class = loader_class
        self.targets = targets
        self.encoder_names = list(encoder_names)
        self.row_offset = row_offset
        self.meta = meta
        # Lightning calls `sampler.set_epoch` before each epoch and reads `batch_sampler` with it
        self.sampler = batches
        self.batch_sampler = None

    @property
    def batch_size(self) -> int:
        return self.sampler.batch_size

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[tuple[dict[str, Any], dict[str, Tensor]]]:
        for indices in self.sampler:
            rows, targets = self.loader_class.index_targets(self.targets, indices)
            table_rows = rows + self.row_offset if self.row_offset else rows
            data = dict.fromkeys(self.encoder_names, table_rows)
            yield {"data": data, "meta": RowMeta(rows, self.meta)}, targets
