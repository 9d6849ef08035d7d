"""Data loaders for similarity learning: they turn samples into (object ids, objects, targets).

Object ids follow CONTRACTS.md: object of group sample ``i`` -> ``i``; ``obj_a`` / ``obj_b`` of pair
sample ``i`` -> ``2i`` / ``2i + 1``. The ids are what the cache uses as row numbers.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import LongTensor, Tensor
from torch.utils.data import DataLoader, Dataset

from quaterion.dataset.group_labels import GroupLabels, is_integer_label
from quaterion.dataset.indexing_dataset import wrap_with_indices
from quaterion.dataset.similarity_samples import SimilarityGroupSample, SimilarityPairSample

Targets = dict[str, Tensor]

_INTEGER_DTYPES = {torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64}


def _label_tensor(values: list[Any], integer: bool) -> Tensor | None:
    """``values`` as a 1-D tensor of integers (or of any real numbers), None if they are not."""
    try:
        tensor = torch.tensor(values) if values else torch.empty(0, dtype=torch.long)
    except (TypeError, ValueError, RuntimeError):
        return None
    allowed = tensor.dtype in _INTEGER_DTYPES or (
        not integer and (tensor.dtype.is_floating_point or tensor.dtype == torch.bool)
    )
    return tensor if allowed and tensor.dim() == 1 else None


def _length(dataset: Dataset) -> int | None:
    """``len(dataset)``, or None when the dataset has no (working) ``__len__``."""
    try:
        return len(dataset)  # type: ignore[arg-type]
    except (TypeError, NotImplementedError):
        return None


def _labels_to_map(dataset: Any) -> GroupLabels | None:
    """The labels of an in-memory list of group samples when some are not integer ids."""
    if not isinstance(dataset, list | tuple) or not all(
        isinstance(sample, SimilarityGroupSample) for sample in dataset
    ):
        return None
    if all(is_integer_label(sample.group) for sample in dataset):
        return None
    return GroupLabels.of_samples(dataset)


class SimilarityDataLoader(DataLoader):
    """Base of the similarity loaders: a ``DataLoader`` whose items are ``(sample_index, sample)``.

    Without a ``collate_fn`` the loader yields ``pre_collate_fn`` output
    ``(ids, features, targets)``; ``TrainableModel.setup_dataloader`` wraps that into the collator
    that produces model-ready batches. ``.dataset`` is the indexing wrapper, ``original_dataset``
    the dataset passed in. Passing an already wrapped dataset (as Lightning does when it
    re-instantiates the loader with a distributed sampler) wraps nothing twice.

    Args:
        dataset: a dataset of samples (`SimilarityPairSample` or `SimilarityGroupSample`, by
            loader).
        **kwargs: any `torch.utils.data.DataLoader` argument (`batch_size`, `shuffle`,
            `num_workers`, ...); `collate_fn` is set by the model.
    """

    #: sample class the loader expects, used in error messages
    sample_type: type = object
    #: what to do instead when a sample of another type shows up
    wrong_sample_hint: str = ""

    def __init__(self, dataset: Dataset, **kwargs: Any):
        if _length(dataset) == 0:
            raise ValueError(
                f"{type(self).__name__} got an empty dataset ({type(dataset).__name__} has "
                "length 0); pass a dataset with at least one sample"
            )
        if kwargs.get("collate_fn") is None:
            kwargs["collate_fn"] = type(self).pre_collate_fn
        self.original_params = dict(kwargs)
        super().__init__(wrap_with_indices(dataset), **kwargs)

    @property
    def original_dataset(self) -> Dataset:
        """The user's dataset, without the indexing wrapper."""
        return self.dataset.dataset

    @classmethod
    def pre_collate_fn(cls, batch: list[tuple[int, Any]]) -> tuple[list[int], list[Any], Targets]:
        """``[(sample_index, sample), ...]`` -> ``(object ids, objects, targets)``.

        Args:
            batch: `(sample index, sample)` tuples.
        """
        indices = [index for index, _ in batch]
        samples = [sample for _, sample in batch]
        targets = cls.collate_labels(samples)
        features, ids = cls.flatten_objects(samples, indices)
        return ids, features, targets

    @classmethod
    def collate_labels(cls, batch: list[Any]) -> Targets:
        """Samples -> the keyword arguments the loss takes besides ``embeddings``.

        Args:
            batch: samples.
        """
        raise NotImplementedError(f"{cls.__name__} does not define collate_labels")

    @classmethod
    def flatten_objects(cls, batch: list[Any], indices: list[int]) -> tuple[list[Any], list[int]]:
        """Samples and their indices -> ``(objects to encode, their object ids)``.

        Args:
            batch: samples.
            indices: their sample indices.
        """
        raise NotImplementedError(f"{cls.__name__} does not define flatten_objects")

    @classmethod
    def index_targets(cls, full_targets: Targets, idx: LongTensor) -> tuple[LongTensor, Targets]:
        """Rows and targets of samples ``idx`` out of ``collate_labels(all samples)``.

        Returns the object ids (cache rows) in the order the encoders would see the objects, and
        targets equal to ``collate_labels([samples[i] for i in idx])``.

        Args:
            full_targets: `collate_labels` of the whole data set.
            idx: `[B]` sample indices.
        """
        raise NotImplementedError(f"{cls.__name__} does not define index_targets")

    @classmethod
    def _labels(cls, samples: list[Any], name: str, integer: bool, need: str) -> Tensor:
        """``[sample.<name> ...]`` as a 1-D tensor, or a TypeError naming the first sample
        whose value is not an integer (``integer``) or a real number; ``need`` says what the
        field holds. One tensor conversion per batch; samples are inspected on error only."""
        values = cls._field(samples, name)
        tensor = _label_tensor(values, integer)
        if tensor is None:
            index = next(
                (i for i, value in enumerate(values) if _label_tensor([value], integer) is None), 0
            )
            value = values[index]
            raise TypeError(
                f"{cls.__name__} needs {need}, got {type(value).__name__} {value!r:.60} as "
                f"`{name}` of batch item {index} ({type(samples[index]).__name__})"
            )
        return tensor

    @classmethod
    def _field(cls, samples: list[Any], name: str) -> list[Any]:
        """``[sample.<name> ...]``, or a TypeError naming the sample type this loader expects."""
        try:
            return [getattr(sample, name) for sample in samples]
        except AttributeError:
            wrong = next(sample for sample in samples if not hasattr(sample, name))
            raise TypeError(
                f"{cls.__name__} expects {cls.sample_type.__name__} items, got "
                f"{type(wrong).__name__}; {cls.wrong_sample_hint}"
            ) from None


class PairsSimilarityDataLoader(SimilarityDataLoader):
    """Loader of ``SimilarityPairSample`` for pairwise losses.

    For ``P`` samples the objects are ``[a_0..a_{P-1}, b_0..b_{P-1}]`` and the targets are
    ``pairs`` [P, 2] (``[i, i + P]``), ``labels`` [P] (scores) and ``subgroups`` [2P].
    """

    sample_type = SimilarityPairSample
    wrong_sample_hint = "use GroupSimilarityDataLoader for SimilarityGroupSample data"

    @classmethod
    def collate_labels(cls, batch: list[SimilarityPairSample]) -> Targets:
        scores = cls._labels(
            batch, "score", False, "a number as each score (1.0 similar, 0.0 dissimilar)"
        ).float()
        subgroups = cls._labels(
            batch, "subgroup", True, "an integer as each subgroup (0 for all: no extra negatives)"
        ).float()
        positions = torch.arange(len(batch))
        return {
            "pairs": torch.stack([positions, positions + len(batch)], dim=1),
            "labels": scores,
            "subgroups": subgroups.repeat(2),
        }

    @classmethod
    def flatten_objects(
        cls, batch: list[SimilarityPairSample], indices: list[int]
    ) -> tuple[list[Any], list[int]]:
        objects = cls._field(batch, "obj_a") + cls._field(batch, "obj_b")
        ids = [2 * index for index in indices] + [2 * index + 1 for index in indices]
        return objects, ids

    @classmethod
    def index_targets(cls, full_targets: Targets, idx: LongTensor) -> tuple[LongTensor, Targets]:
        size = idx.shape[0]
        positions = torch.arange(size, device=idx.device)
        # full subgroups are [sg_0..sg_{N-1}, sg_0..sg_{N-1}]: the first half is per sample
        subgroups = full_targets["subgroups"][idx]
        rows = torch.cat([2 * idx, 2 * idx + 1])
        return rows, {
            "pairs": torch.stack([positions, positions + size], dim=1),
            "labels": full_targets["labels"][idx],
            "subgroups": subgroups.repeat(2),
        }


class GroupSimilarityDataLoader(SimilarityDataLoader):
    """Loader of ``SimilarityGroupSample`` for group losses; targets are ``groups`` [B] (int64).

    Samples given as a list (or tuple) may carry any hashable group labels (intent names,
    class names): when some label is not an integer, the loader maps every label to its id in
    sorted order (see ``GroupLabels``) and keeps the mapping in ``group_labels``, so losses see
    ids ``0..G-1`` (a class loss needs ``num_groups=len(loader.group_labels)``). Other datasets
    must yield integer ids. ``group_labels`` is None when no mapping was needed.

    Args:
        dataset: a dataset of `SimilarityGroupSample`s.
        **kwargs: any `torch.utils.data.DataLoader` argument (`batch_size`, `shuffle`, ...).
    """

    sample_type = SimilarityGroupSample
    wrong_sample_hint = (
        "wrap (record, label) data in SimilarityGroupDataset, or use PairsSimilarityDataLoader "
        "for SimilarityPairSample data"
    )

    def __init__(self, dataset: Dataset, **kwargs: Any):
        self.group_labels = _labels_to_map(dataset)
        if self.group_labels is not None:
            dataset = self.group_labels.to_ids(dataset)
        super().__init__(dataset, **kwargs)

    @classmethod
    def collate_labels(cls, batch: list[SimilarityGroupSample]) -> Targets:
        groups = cls._labels(
            batch,
            "group",
            True,
            "integer group ids; pass the samples as a list (labels are then mapped to ids) or "
            "map each label to an int with quaterion.dataset.GroupLabels",
        )
        return {"groups": groups.long()}

    @classmethod
    def flatten_objects(
        cls, batch: list[SimilarityGroupSample], indices: list[int]
    ) -> tuple[list[Any], list[int]]:
        return cls._field(batch, "obj"), list(indices)

    @classmethod
    def index_targets(cls, full_targets: Targets, idx: LongTensor) -> tuple[LongTensor, Targets]:
        return idx, {"groups": full_targets["groups"][idx]}
