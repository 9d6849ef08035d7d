"""Seeded subsampling and train / held-out splits."""

import pytest

from quaterion.data import subsample, train_held_out_split
from quaterion.dataset import SimilarityGroupSample


def test_subsample_is_seeded_and_keeps_order():
    items = list(range(100))
    first = subsample(items, 10, seed=3)
    assert first == subsample(items, 10, seed=3)
    assert first != subsample(items, 10, seed=4)
    assert first == sorted(first) and len(set(first)) == 10
    assert subsample(items, 500) == items
    with pytest.raises(ValueError, match=">= 0"):
        subsample(items, -1)


def test_split_by_item_and_by_group():
    items = list(range(50))
    train, held = train_held_out_split(items, 0.2, seed=1)
    assert len(held) == 10 and sorted(train + held) == items
    assert (train, held) == train_held_out_split(items, 0.2, seed=1)

    samples = [SimilarityGroupSample(obj=i, group=i % 10) for i in range(100)]
    train, held = train_held_out_split(samples, 0.3, seed=0, key=lambda s: s.group)
    train_groups, held_groups = {s.group for s in train}, {s.group for s in held}
    assert len(held_groups) == 3 and not train_groups & held_groups
    assert len(train) + len(held) == 100
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        train_held_out_split(items, 1.0)
