"""Batches for group losses built from neighbouring groups, so that hard negatives meet."""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Sequence

import torch
from torch import Tensor

from quaterion.dataset.m_per_class_sampler import MPerClassBatchSampler


class NeighbourGroupsBatchSampler(MPerClassBatchSampler):
    """M-per-class batches whose groups are neighbours: one group and its nearest groups.

    A batch of random groups mostly pairs groups that the model already tells apart, so its
    negatives are easy. Here each batch takes an *anchor* group and the ``nearest`` groups
    nearest to it (by default ``groups_per_batch - 1``: the whole batch), ``m`` objects of each:
    the groups the model confuses meet in one batch. With ``nearest`` below
    ``groups_per_batch - 1`` the other places go to random groups, so that far groups still
    show up as negatives. Anchors follow a random permutation of the groups (every group is an
    anchor equally often); objects are drawn as in :class:`MPerClassBatchSampler` (every object
    of a group is used before one repeats).

    Which groups are near is given by :meth:`set_neighbours`, normally each epoch by
    :class:`~quaterion.train.callbacks.NeighbourGroupsCallback`, which finds them with the
    retrieval engine among the group centroids of the current model's embeddings (cached ones
    when the cache is on). Until neighbours are set, batches draw random groups, as
    :class:`MPerClassBatchSampler` does.

    The batches depend only on ``seed``, the epoch and the neighbour table, never on the
    process: under DDP every process draws the same sequence (the callback gives every process
    the same table) and keeps every ``world_size``-th batch from its rank on. Pass it to the
    loader as ``batch_sampler`` and, under DDP, build the trainer with
    ``Trainer(use_distributed_sampler=False)``.

    Args:
        groups: the group label of each sample, in dataset order (``[s.group for s in samples]``).
        m: objects per group in a batch.
        groups_per_batch: groups in a batch: an anchor, its ``nearest`` nearest groups and
            random other groups (at least 2).
        seed: seed of the draw; the same seed, epoch and neighbours give the same batches.
        num_replicas: number of processes; None reads it from torch.distributed when iterating.
        rank: this process's rank; None reads it from torch.distributed when iterating.
        nearest: how many of the anchor's nearest groups a batch holds (default and at most
            ``groups_per_batch - 1``; the other places go to random groups).
    """

    def __init__(
        self,
        groups: Sequence[Hashable],
        m: int,
        groups_per_batch: int,
        seed: int = 0,
        num_replicas: int | None = None,
        rank: int | None = None,
        nearest: int | None = None,
    ):
        super().__init__(groups, m, groups_per_batch, seed, num_replicas, rank)
        self.nearest = groups_per_batch - 1 if nearest is None else nearest
        if not 1 <= self.nearest <= groups_per_batch - 1:
            raise ValueError(
                f"nearest must be between 1 and groups_per_batch - 1 = {groups_per_batch - 1} "
                f"(the anchor takes one place), got {nearest}"
            )
        self._neighbours: Tensor | None = None

    @property
    def neighbours(self) -> Tensor | None:
        """``[G, nearest]`` the nearest groups of each group, nearest first, as
        last set (None before :meth:`set_neighbours`)."""
        return self._neighbours

    def set_neighbours(self, neighbours: Tensor) -> None:
        """Use these nearest groups from the next iteration on.

        Args:
            neighbours: ``[G, k]`` integer tensor, ``k >= nearest``: row ``g`` lists the groups
                nearest to group ``g`` (indices into :attr:`group_labels`), nearest first,
                without ``g`` itself and without repeats; only the first ``nearest`` columns
                are used.
        """
        table = torch.as_tensor(neighbours)
        wanted = self.nearest
        if table.dim() != 2 or table.shape[0] != self.num_groups or table.is_floating_point():
            raise ValueError(
                f"neighbours must be an integer tensor [groups={self.num_groups}, k>={wanted}], "
                f"got {table.dtype} of shape {tuple(table.shape)}"
            )
        if table.shape[1] < wanted:
            raise ValueError(
                f"neighbours has {table.shape[1]} columns but the sampler puts {wanted} nearest "
                "groups in each batch; find more neighbours"
            )
        table = table[:, :wanted].long().cpu()
        if len(table) and (table.min() < 0 or table.max() >= self.num_groups):
            raise ValueError(f"neighbours must be group indices in [0, {self.num_groups})")
        own = torch.arange(self.num_groups)[:, None]
        rows = torch.cat([own, table], dim=1).sort(dim=1).values
        if bool((rows[:, 1:] == rows[:, :-1]).any()):
            raise ValueError(
                "each row of neighbours must list distinct groups other than its own group"
            )
        self._neighbours = table.clone()

    def _group_lists(self, generator: torch.Generator) -> Iterator[list[int]]:
        """An anchor (a random permutation of the groups, drawn again when used up), its
        nearest groups and random others to fill the batch; random groups while no neighbours
        are set."""
        if self._neighbours is None:
            yield from super()._group_lists(generator)
            return
        neighbours = self._neighbours.tolist()
        while True:
            for anchor in torch.randperm(self.num_groups, generator=generator).tolist():
                chosen = [anchor, *neighbours[anchor]]
                if len(chosen) < self.groups_per_batch:
                    others = torch.randperm(self.num_groups, generator=generator).tolist()
                    chosen += [g for g in others if g not in chosen][
                        : self.groups_per_batch - len(chosen)
                    ]
                yield chosen
