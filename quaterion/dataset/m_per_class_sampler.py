"""Batches for group losses: each batch holds ``m`` objects of each of its groups."""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Sequence

import torch
from torch import Tensor
from torch.utils.data import Sampler

from quaterion.utils.distributed import rank_and_world


class MPerClassBatchSampler(Sampler[list[int]]):
    """Batch sampler whose batches hold ``m`` objects of each of ``groups_per_batch`` groups.

    Group losses learn from positives and negatives inside a batch; with plain shuffling a batch
    of many groups holds few positives per anchor. Here each batch draws ``groups_per_batch``
    distinct groups at random and ``m`` objects of each (``batch_size = m * groups_per_batch``).
    A group's objects are drawn from a shuffled queue that is refilled when empty, so every
    object is used before one repeats, and a batch repeats an object only when its group has
    fewer than ``m``.

    One epoch is ``max(1, len(groups) // batch_size)`` batches in all, rounded up to a multiple
    of the number of processes. The batches depend only on ``seed`` and the epoch
    (``set_epoch``, which Lightning calls each epoch), never on the process: under DDP every
    process draws the same sequence and keeps every ``world_size``-th batch from its rank on, so
    the processes get disjoint batches and equally many of them. Pass this sampler to the
    loader (``GroupSimilarityDataLoader(samples, batch_sampler=...)``) and, under DDP, build the
    trainer with ``Trainer(use_distributed_sampler=False)``: the sampler shards itself.

    Args:
        groups: the group label of each sample, in dataset order (``[s.group for s in samples]``);
            any hashable labels.
        m: objects per group in a batch.
        groups_per_batch: distinct groups in a batch (at least 2, so that a batch has negatives).
        seed: seed of the draw; the same seed and epoch give the same batches.
        num_replicas: number of processes; None reads it from torch.distributed when iterating.
        rank: this process's rank; None reads it from torch.distributed when iterating.
    """

    def __init__(
        self,
        groups: Sequence[Hashable],
        m: int,
        groups_per_batch: int,
        seed: int = 0,
        num_replicas: int | None = None,
        rank: int | None = None,
    ):
        members: dict[Hashable, list[int]] = {}
        for index, group in enumerate(groups):
            members.setdefault(group, []).append(index)
        if m < 1:
            raise ValueError(f"MPerClassBatchSampler needs m >= 1 objects per group, got {m}")
        if groups_per_batch < 2:
            raise ValueError(
                f"MPerClassBatchSampler needs groups_per_batch >= 2 so that a batch has "
                f"negatives, got {groups_per_batch}"
            )
        if groups_per_batch > len(members):
            raise ValueError(
                f"groups_per_batch={groups_per_batch} is more than the {len(members)} groups of "
                "the data; lower groups_per_batch"
            )
        if num_replicas is not None and not 0 <= (rank or 0) < num_replicas:
            raise ValueError(f"rank must be in [0, {num_replicas}), got {rank}")
        self._members = [torch.tensor(indices) for indices in members.values()]  # per group
        self._labels = list(members)  # group index -> label
        self.m, self.groups_per_batch, self.seed = m, groups_per_batch, seed
        self.batch_size = m * groups_per_batch
        self._num_samples = len(groups)
        self._num_replicas, self._rank = num_replicas, rank
        self.epoch = 0

    @property
    def num_groups(self) -> int:
        """Number of distinct groups in the data."""
        return len(self._members)

    @property
    def group_labels(self) -> list[Hashable]:
        """The label of each group index, in the order the labels first appear in the data."""
        return list(self._labels)

    def group_index(self) -> Tensor:
        """``[N]`` the group index of each sample (positions in :attr:`group_labels`)."""
        index = torch.empty(self._num_samples, dtype=torch.long)
        for group, members in enumerate(self._members):
            index[members] = group
        return index

    @property
    def sampler(self) -> MPerClassBatchSampler:
        """Itself: Lightning calls ``set_epoch`` on ``loader.batch_sampler.sampler`` each epoch."""
        return self

    def set_epoch(self, epoch: int) -> None:
        """Draw the batches of ``epoch`` on the next iteration.

        Args:
            epoch: the epoch about to start.
        """
        self.epoch = epoch

    def _rank_and_world(self) -> tuple[int, int]:
        if self._num_replicas is not None:
            return self._rank or 0, self._num_replicas
        return rank_and_world()

    def __len__(self) -> int:
        """Batches this process gets per epoch."""
        world = self._rank_and_world()[1]
        total = max(1, self._num_samples // self.batch_size)
        return -(-total // world)  # ceil

    def __iter__(self) -> Iterator[list[int]]:
        rank, world = self._rank_and_world()
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        queues: list[list[int]] = [[] for _ in self._members]
        plans = self._group_lists(generator)
        for batch_index in range(len(self) * world):
            batch = []
            for group in next(plans):
                batch.extend(self._take(group, queues[group], generator))
            if batch_index % world == rank:  # every rank draws all batches and keeps its own
                yield batch

    def _group_lists(self, generator: torch.Generator) -> Iterator[list[int]]:
        """The groups of each batch in turn (group indices in first-seen order), endlessly:
        ``groups_per_batch`` distinct groups drawn at random."""
        while True:
            chosen = torch.randperm(len(self._members), generator=generator)
            yield chosen[: self.groups_per_batch].tolist()

    def _take(self, group: int, queue: list[int], generator: torch.Generator) -> list[int]:
        """``m`` objects of ``group``, popped from its shuffled queue (refilled when empty)."""
        members = self._members[group]
        taken: list[int] = []
        while len(taken) < self.m:
            if not queue:
                order = members[torch.randperm(len(members), generator=generator)].tolist()
                # objects already in this batch go first in the queue, so they are popped last
                queue.extend(sorted(order, key=lambda index: index not in taken))
            taken.append(queue.pop())
        return taken
