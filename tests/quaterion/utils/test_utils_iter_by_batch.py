"""iter_by_batch over lists, iterators and both kinds of torch datasets."""

import pytest
from torch.utils.data import Dataset, IterableDataset

from quaterion.utils.utils import iter_by_batch

CASES = [([], []), ([1], [[1]]), ([1, 2], [[1, 2]]), ([1, 2, 3], [[1, 2], [3]])]
CASES.append(([1, 2, 3, 4], [[1, 2], [3, 4]]))


class OnlyIterable:
    """An iterable without __getitem__ or __len__."""

    def __init__(self, items):
        self.items = items

    def __iter__(self):
        return iter(self.items)


class MapDataset(Dataset):
    def __init__(self, items):
        self.items = items

    def __getitem__(self, index):
        return self.items[index]

    def __len__(self):
        return len(self.items)


class StreamDataset(IterableDataset):
    def __init__(self, items):
        self.items = items

    def __iter__(self):
        return iter(self.items)


@pytest.mark.parametrize("wrap", [list, OnlyIterable, MapDataset, StreamDataset])
@pytest.mark.parametrize(("items", "expected"), CASES)
def test_iter_by_batch(wrap, items, expected):
    assert list(iter_by_batch(wrap(items), 2, log_progress=False)) == expected


def test_iter_by_batch_with_progress_and_large_batch():
    assert list(iter_by_batch(list(range(5)), 10)) == [[0, 1, 2, 3, 4]]


def test_iter_by_batch_rejects_non_positive_batch_size():
    with pytest.raises(ValueError, match="batch_size >= 1"):
        iter_by_batch([1, 2], 0)
