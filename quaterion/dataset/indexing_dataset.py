"""Dataset wrappers that pair every sample with its position: the sample index the loaders
turn into object ids (see CONTRACTS.md)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from torch.utils.data import Dataset, IterableDataset, get_worker_info


class IndexingDataset(Dataset):
    """Map-style wrapper: item ``i`` is ``(i, dataset[i])``.

    Args:
        dataset: a map-style dataset.
    """

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __getitem__(self, index: int) -> tuple[int, Any]:
        return index, self.dataset[index]

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]


class IndexingIterableDataset(IterableDataset):
    """Iterable wrapper: yields ``(index, sample)`` with indices unique across loader workers.

    With ``W`` workers, the ``n``-th sample of worker ``w`` gets index ``n * W + w``: the same
    stream order always gives the same indices, and with one worker they are ``0, 1, 2, ...``.

    Args:
        dataset: an iterable dataset.
    """

    def __init__(self, dataset: IterableDataset):
        self.dataset = dataset

    def __iter__(self) -> Iterator[tuple[int, Any]]:
        info = get_worker_info()
        step, offset = (1, 0) if info is None else (info.num_workers, info.id)
        for position, sample in enumerate(self.dataset):
            yield position * step + offset, sample


def wrap_with_indices(dataset: Dataset) -> IndexingDataset | IndexingIterableDataset:
    """Wrap ``dataset`` in the matching indexing wrapper; an already wrapped dataset is returned
    as is, so re-instantiating a loader from its ``.dataset`` (as Lightning does) never nests.

    Args:
        dataset: a map-style or iterable dataset.

    Returns:
        the matching indexing wrapper.
    """
    if isinstance(dataset, (IndexingDataset, IndexingIterableDataset)):
        return dataset
    if isinstance(dataset, IterableDataset):
        return IndexingIterableDataset(dataset)
    return IndexingDataset(dataset)
