"""Tensor helpers for the losses (masks, dtype limits, masked reductions) and batch iteration."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from quaterion_models.utils.progress import track


def info_value_of_dtype(dtype: torch.dtype) -> torch.finfo | torch.iinfo:
    """``torch.finfo`` for floating dtypes, ``torch.iinfo`` for integer ones.

    Raises:
        TypeError: for ``torch.bool``, which has no numeric range.

    Args:
        dtype: a numeric torch dtype.
    """
    if dtype == torch.bool:
        raise TypeError("Does not support torch.bool")
    return torch.finfo(dtype) if dtype.is_floating_point else torch.iinfo(dtype)


def min_value_of_dtype(dtype: torch.dtype) -> int | float:
    """Smallest finite value representable in ``dtype``.

    Args:
        dtype: a numeric torch dtype.
    """
    return info_value_of_dtype(dtype).min


def max_value_of_dtype(dtype: torch.dtype) -> int | float:
    """Largest finite value representable in ``dtype``.

    Args:
        dtype: a numeric torch dtype.
    """
    return info_value_of_dtype(dtype).max


def get_anchor_positive_mask(labels_a: Tensor, labels_b: Tensor | None = None) -> Tensor:
    """``mask[i, j] = labels_a[i] == labels_b[j]``: ``(Na, Nb)`` bool.

    With ``labels_b=None`` both sides are the same batch, so ``mask[i, i]`` (an object paired with
    itself) is cleared. With two label tensors (e.g. batch vs. memory) nothing is cleared: unlike
    the original, equal label tensors of *different* objects keep their diagonal.

    Args:
        labels_a: `(A,)` labels of the anchors.
        labels_b: `(B,)` labels of the candidates; None: the anchors themselves (the diagonal is
            then cleared).
    """
    if labels_b is not None:
        return labels_a.unsqueeze(1) == labels_b.unsqueeze(0)
    mask = labels_a.unsqueeze(1) == labels_a.unsqueeze(0)
    mask.fill_diagonal_(False)
    return mask


def get_anchor_negative_mask(labels_a: Tensor, labels_b: Tensor | None = None) -> Tensor:
    """``mask[i, j] = labels_a[i] != labels_b[j]`` (``labels_b=None`` means ``labels_a``): bool.

    Args:
        labels_a: `(A,)` labels of the anchors.
        labels_b: `(B,)` labels of the candidates; None: the anchors themselves.
    """
    labels_b = labels_a if labels_b is None else labels_b
    return labels_a.unsqueeze(1) != labels_b.unsqueeze(0)


def get_triplet_mask(labels: Tensor) -> Tensor:
    """``mask[a, p, n]``: ``a, p, n`` distinct, ``labels[a] == labels[p] != labels[n]``.

    labels ``(B,)`` -> bool ``(B, B, B)``.

    Args:
        labels: `(B,)` labels.
    """
    positive = get_anchor_positive_mask(labels)  # (B, B), diagonal cleared
    negative = get_anchor_negative_mask(labels)  # (B, B), different labels hence distinct
    return positive.unsqueeze(2) & negative.unsqueeze(1)


def get_masked_maximum(dists: Tensor, mask: Tensor, dim: int = 1) -> Tensor:
    """Maximum of ``dists`` over entries where ``mask`` is set, along ``dim`` (kept, size 1).

    Rows without any masked entry give the row minimum.

    Args:
        dists: a distance matrix.
        mask: boolean mask of the same shape.
        dim: the dimension reduced.
    """
    row_min = dists.min(dim, keepdim=True).values
    return ((dists - row_min) * mask).max(dim, keepdim=True).values + row_min


def get_masked_minimum(dists: Tensor, mask: Tensor, dim: int = 1) -> Tensor:
    """Minimum of ``dists`` over entries where ``mask`` is set, along ``dim`` (kept, size 1).

    Rows without any masked entry give the row maximum.

    Args:
        dists: a distance matrix.
        mask: boolean mask of the same shape.
        dim: the dimension reduced.
    """
    row_max = dists.max(dim, keepdim=True).values
    return ((dists - row_max) * mask).min(dim, keepdim=True).values + row_max


def l2_norm(inputs: Tensor, dim: int = 0) -> Tensor:
    """``inputs`` scaled to unit L2 norm along ``dim``.

    Args:
        inputs: any tensor.
        dim: the dimension normalised.
    """
    return F.normalize(inputs, p=2, dim=dim)


def iter_by_batch(
    sequence: Iterable[Any], batch_size: int, log_progress: bool = True
) -> Iterator[list[Any]]:
    """Yield consecutive lists of at most ``batch_size`` items of ``sequence``.

    Indexable sized collections (lists, map-style datasets) are read by index; anything else
    (iterators, iterable datasets) by plain iteration. ``log_progress`` shows a progress bar.

    Raises:
        ValueError: ``batch_size`` is smaller than 1.

    Args:
        sequence: items (indexable or iterable).
        batch_size: most items per list.
        log_progress: draw a progress bar.
    """
    if batch_size < 1:
        raise ValueError(f"iter_by_batch needs batch_size >= 1, got {batch_size}")
    try:
        size = len(sequence)  # type: ignore[arg-type]
    except TypeError:
        size = None
    batches = _batches_by_index(sequence, size, batch_size) if size else None
    if batches is None:
        batches = _batches_by_iteration(sequence, batch_size)
    total = math.ceil(size / batch_size) if size is not None else None
    return track(batches, total=total, description="Batches", enabled=log_progress)


def _batches_by_index(sequence: Any, size: int, batch_size: int) -> Iterator[list[Any]] | None:
    """Batches read by ``sequence[i]``, or None when the collection does not support indexing."""
    try:
        first = sequence[0]
    except (AttributeError, NotImplementedError, IndexError, TypeError, KeyError):
        return None

    def batches() -> Iterator[list[Any]]:
        for start in range(0, size, batch_size):
            stop = min(start + batch_size, size)
            # item 0 was already read by the indexing probe above
            yield [first if i == 0 else sequence[i] for i in range(start, stop)]

    return batches()


def _batches_by_iteration(sequence: Iterable[Any], batch_size: int) -> Iterator[list[Any]]:
    iterator = iter(sequence)
    while batch := list(islice(iterator, batch_size)):
        yield batch
