"""Deterministic, seeded subsampling and train / held-out splits of sample lists."""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

T = TypeVar("T")


def subsample(items: Sequence[T], size: int, seed: int = 0) -> list[T]:
    """`size` items drawn without replacement by `seed`, kept in their original order.

    Asking for at least `len(items)` returns them all.

    Args:
        items: the items to draw from.
        size: how many to draw.
        seed: random seed.
    """
    if size < 0:
        raise ValueError(f"subsample size must be >= 0, got {size}")
    if size >= len(items):
        return list(items)
    chosen = sorted(random.Random(seed).sample(range(len(items)), size))
    return [items[index] for index in chosen]


def train_held_out_split(
    items: Sequence[T],
    held_out_fraction: float = 0.2,
    seed: int = 0,
    key: Callable[[T], Hashable] | None = None,
) -> tuple[list[T], list[T]]:
    """Split `items` into (train, held_out), both in original order, reproducibly by `seed`.

    Without `key` a `held_out_fraction` share of the items is held out. With `key` (e.g.
    `lambda sample: sample.group`) that share of the distinct key values is held out, so no
    group appears on both sides: the held-out part measures generalisation to unseen groups.

    Args:
        items: the items to split.
        held_out_fraction: share held out, strictly between 0 and 1.
        seed: random seed.
        key: when given, split the distinct values of `key(item)` instead of the items.
    """
    if not 0.0 < held_out_fraction < 1.0:
        raise ValueError(
            f"held_out_fraction must be strictly between 0 and 1, got {held_out_fraction}"
        )
    keys = [key(item) for item in items] if key is not None else list(range(len(items)))
    distinct = list(dict.fromkeys(keys))
    held_count = round(len(distinct) * held_out_fraction)
    held = set(random.Random(seed).sample(distinct, held_count))
    train = [item for item, item_key in zip(items, keys, strict=True) if item_key not in held]
    held_out = [item for item, item_key in zip(items, keys, strict=True) if item_key in held]
    return train, held_out
