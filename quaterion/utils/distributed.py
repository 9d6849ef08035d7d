"""Gathering tensors across processes: in-batch negatives that span the global batch (losses),
the memory of cross-batch memory (XBM), and the rows each process encoded (cache fill).

Scaling convention: every rank computes the loss over the *global* batch and its local shard
keeps its autograd graph, so the gradient w.r.t. a rank's own embeddings equals the gradient of
the single-process loss over the concatenated batch. DDP then *averages* parameter gradients over
ranks, i.e. parameters receive ``1 / world_size`` of the single-process gradient; multiply the
loss (or the learning rate) by ``world_size`` to recover it exactly.
"""

from __future__ import annotations

import atexit
import functools
from collections.abc import Iterable
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor


def rank_and_world() -> tuple[int, int]:
    """This process's rank and the number of processes; (0, 1) when not running distributed."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def world_size() -> int:
    """Number of processes in the default group; 1 when torch.distributed is not initialised."""
    return rank_and_world()[1]


@functools.cache  # register once per process
def destroy_process_group_at_exit() -> None:
    """Destroy the default process group when the interpreter exits, while it is still alive.

    Lightning destroys it at exit only for NCCL. A Gloo group left to interpreter finalization
    can abort the process ("terminate called without an active exception"): its worker threads
    still hold work whose tensors need the GIL. Destroying it in an ``atexit`` handler joins
    those threads first; the handler does nothing when the group is gone already. At exit no
    collective runs any more, so no rank waits for another.
    """
    atexit.register(_destroy_process_group)


def _destroy_process_group() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def gather_with_grad(tensor: Tensor) -> Tensor:
    """Concatenate ``tensor`` from every rank along dim 0 (ranks in order); ``(sum_r N_r, ...)``.

    The local shard is the input itself, so gradients flow back to it; the other shards are
    constants. Shards may differ in length along dim 0 (e.g. a last, smaller batch). Returns
    ``tensor`` unchanged when not running distributed (or with world size 1).

    Args:
        tensor: this rank's shard, `(N_r, ...)`.
    """
    return _gather(tensor)[0]


def gather_rows(*tensors: Tensor) -> tuple[Tensor, ...]:
    """Rows of each tensor from every rank, concatenated in rank order, without gradient.

    Ranks may hold different numbers of rows. Returns the tensors as they are when not running
    distributed.

    Args:
        *tensors: tensors to gather along dim 0, each on the process group's device.
    """
    if world_size() == 1:
        return tensors
    return tuple(_gather(tensor.detach())[0] for tensor in tensors)


def gather_pairs(pairs: Tensor, num_local_objects: int) -> Tensor:
    """Gather ``pairs`` ``(P, 2)`` from every rank, re-indexed into the gathered objects.

    Rank ``r``'s indices are shifted by the number of objects (embeddings) held by ranks
    ``0..r-1``, matching ``gather_with_grad(embeddings)``.

    Args:
        pairs: `(P, 2)` this rank's pairs, indexing its own objects.
        num_local_objects: number of objects (embeddings) this rank holds.
    """
    if world_size() == 1:
        return pairs
    object_counts = _gather_lengths(num_local_objects, pairs.device)
    offsets = torch.cumsum(object_counts, 0) - object_counts  # (W,) first object id of each rank
    gathered, pair_counts = _gather(pairs)
    return gathered + offsets.repeat_interleave(pair_counts).unsqueeze(1)


def _gather_lengths(length: int, device: torch.device) -> Tensor:
    lengths = [torch.zeros(1, dtype=torch.long, device=device) for _ in range(world_size())]
    dist.all_gather(lengths, torch.tensor([length], dtype=torch.long, device=device))
    return torch.cat(lengths)


def _gather(tensor: Tensor) -> tuple[Tensor, Tensor]:
    """Gathered tensor and the dim-0 length contributed by each rank ``(W,)``."""
    if world_size() == 1:
        return tensor, torch.tensor([len(tensor)], device=tensor.device)
    lengths = _gather_lengths(len(tensor), tensor.device)
    max_length = int(lengths.max())
    padded = tensor.new_zeros((max_length, *tensor.shape[1:]))
    padded[: len(tensor)] = tensor.detach()
    shards = [torch.empty_like(padded) for _ in range(len(lengths))]
    dist.all_gather(shards, padded.contiguous())
    shards = [shard[:length] for shard, length in zip(shards, lengths.tolist(), strict=True)]
    shards[dist.get_rank()] = tensor
    return torch.cat(shards), lengths


def shard_offset(length: int, device: torch.device) -> int:
    """Number of rows held by the ranks before this one: where this rank's shard starts in a
    ``gather_rows`` of them.

    Args:
        length: rows this rank holds.
        device: the process group's device, where the lengths are exchanged.
    """
    rank, world = rank_and_world()
    if world == 1:
        return 0
    return int(_gather_lengths(length, device)[:rank].sum())


def all_reduce_sum(tensor: Tensor) -> Tensor:
    """Sum of ``tensor`` over every rank (a new tensor; the input itself when not distributed).

    Args:
        tensor: the same shape on every rank, on the process group's device.
    """
    if world_size() == 1:
        return tensor
    total = tensor.clone()
    dist.all_reduce(total)
    return total


def broadcast_from_zero(tensor: Tensor) -> Tensor:
    """Rank 0's ``tensor`` on every rank (the input itself when not distributed), so that a
    decision computed on every process (e.g. which groups are neighbours) is the same on all.

    Args:
        tensor: the same shape and dtype on every rank, on the process group's device.
    """
    if world_size() == 1:
        return tensor
    shared = tensor.clone()
    dist.broadcast(shared, src=0)
    return shared


def broadcast_object_from_zero(value: Any) -> Any:
    """Rank 0's `value` (any picklable object) on every rank; `value` itself when not
    distributed. For decisions that must agree, e.g. the fingerprints that decide whether a
    stored cache is reused.

    Args:
        value: this rank's value; only rank 0's is kept.
    """
    if world_size() == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def on_any_rank(names: set[str], candidates: Iterable[str]) -> set[str]:
    """The `candidates` that any rank put in its `names` (`names` itself when not distributed):
    what one process must recompute, every process recomputes, so that each one joins the
    same collectives.

    Args:
        names: this rank's choice, a subset of `candidates`.
        candidates: every name any rank may choose, the same on every rank.
    """
    if world_size() == 1:
        return set(names)
    ordered = sorted(candidates)
    flags = torch.tensor([name in names for name in ordered], dtype=torch.long)
    if dist.get_backend() == "nccl":
        flags = flags.cuda()
    dist.all_reduce(flags)
    return {name for name, flag in zip(ordered, flags.tolist(), strict=True) if flag}
