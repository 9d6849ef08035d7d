"""Adapter from a ``(record, label)`` dataset to group samples."""

from __future__ import annotations

from collections.abc import Sized

from torch.utils.data import Dataset

from quaterion.dataset.similarity_samples import SimilarityGroupSample


class SimilarityGroupDataset(Dataset):
    """Serves each ``(record, label)`` item of ``dataset`` as ``SimilarityGroupSample``.

    Handy to reuse a classification dataset (e.g. torchvision's) with a group loss.

    Args:
        dataset: a map-style dataset of `(object, label)` items, e.g. a torchvision data set.
    """

    def __init__(self, dataset: Dataset):
        self._dataset = dataset

    def __getitem__(self, index: int) -> SimilarityGroupSample:
        record, label = self._dataset[index]
        return SimilarityGroupSample(obj=record, group=label)

    def __len__(self) -> int:
        if not isinstance(self._dataset, Sized):
            raise NotImplementedError(
                f"{type(self._dataset).__name__} has no __len__, so SimilarityGroupDataset has none"
            )
        return len(self._dataset)
