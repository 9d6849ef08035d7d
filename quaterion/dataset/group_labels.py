"""Group labels of any hashable type (intent names, class names, ids) <-> integer group ids.

Losses and metrics compare integer ids; real data names its groups. ``GroupLabels`` maps the
distinct labels of a data set to ``0..G-1`` in sorted order (integers by value, then strings,
then anything else by type name and ``repr``), so the same labels always give the same ids, and
it keeps the names to show in results. Integer labels ``0..G-1`` map to themselves.
"""

from __future__ import annotations

import numbers
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from typing import Any

import torch

from quaterion.dataset.similarity_samples import SimilarityGroupSample


def is_integer_label(label: Any) -> bool:
    """Whether `label` is an integer id as losses take it (Python or numpy int, not a bool).

    Args:
        label: a group label.
    """
    return isinstance(label, numbers.Integral) and not isinstance(label, bool)


def _sort_key(label: Hashable) -> tuple[int, Any, Any]:
    """Integers by value, then strings, then other labels by type name and repr."""
    if is_integer_label(label):
        return 0, int(label), ""
    if isinstance(label, str):
        return 1, label, ""
    return 2, type(label).__name__, repr(label)


def check_hashable(label: Any, where: str) -> None:
    """TypeError naming ``where`` unless ``label`` can serve as a group label.

    Args:
        label: the value to check.
        where: where it came from, named in the error.
    """
    try:
        hash(label)
    except TypeError:
        raise TypeError(
            f"group label of {where} must be hashable (an int, a string, a tuple, ...), got "
            f"{type(label).__name__} {label!r:.60}"
        ) from None


class GroupLabels:
    """The sorted distinct labels of a data set and their ids ``0..len-1``.

    Args:
        labels: every sample's label (repeats welcome); any hashable values.
    """

    def __init__(self, labels: Iterable[Hashable]):
        counts: Counter = Counter()
        for position, label in enumerate(labels):
            check_hashable(label, f"sample {position}")
            counts[label] += 1
        self.names: tuple[Hashable, ...] = tuple(sorted(counts, key=_sort_key))
        self.counts: tuple[int, ...] = tuple(counts[name] for name in self.names)
        self._ids = {name: index for index, name in enumerate(self.names)}

    @classmethod
    def of_samples(cls, samples: Iterable[SimilarityGroupSample]) -> GroupLabels:
        """The labels of ``samples``' ``group`` fields.

        Args:
            samples: group samples.
        """
        return cls(sample.group for sample in samples)

    def __len__(self) -> int:
        return len(self.names)

    def id_of(self, label: Hashable) -> int:
        """The id of ``label``; KeyError naming a few known labels when it is not one.

        Args:
            label: a known label.
        """
        try:
            return self._ids[label]
        except KeyError:
            known = ", ".join(repr(name) for name in self.names[:5])
            raise KeyError(
                f"group label {label!r} is not one of the {len(self)} known labels ({known}"
                f"{', ...' if len(self) > 5 else ''})"
            ) from None

    def to_ids(self, samples: Sequence[SimilarityGroupSample]) -> list[SimilarityGroupSample]:
        """Copies of ``samples`` whose ``group`` is the label's integer id.

        Args:
            samples: group samples with labels of this mapping.
        """
        return [SimilarityGroupSample(obj=s.obj, group=self.id_of(s.group)) for s in samples]

    def summary(self, limit: int = 10) -> str:
        """``"billing (15), cancel (12), ..."``: names with their sample counts.

        Args:
            limit: most labels shown.
        """
        shown = [f"{name} ({count})" for name, count in zip(self.names, self.counts, strict=True)][
            :limit
        ]
        more = len(self) - len(shown)
        return ", ".join(shown) + (f", ... ({more} more)" if more > 0 else "")

    def check_trainable(self, what: str) -> None:
        """ValueError unless there are two groups or more and some group has two members or
        more: with one group every object is similar to every other (a group loss learns
        nothing, retrieval metrics are 1.0), and without a pair there is no positive at all.

        Args:
            what: the data set, named in the error.
        """
        if len(self) < 2:
            only = f"1 group ({self.names[0]!r})" if self.names else "0 groups"
            raise ValueError(
                f"{what} has {only}; similarity needs at least 2 groups so that "
                "some objects are dissimilar: add samples of other groups"
            )
        if max(self.counts) < 2:
            raise ValueError(
                f"{what} has {len(self)} groups of one sample each; a group loss needs groups "
                "with at least 2 members (similar objects): add more samples per group"
            )


class FirstSeenIds:
    """Ids for group labels in the order they are first seen, for consumers that compare ids
    only for equality (retrieval metrics) and see the data a batch at a time. Integer tensors
    of one element count as their integer."""

    def __init__(self) -> None:
        self._ids: dict[Hashable, int] = {}

    def __call__(self, labels: Iterable[Any]) -> list[int]:
        ids = []
        for position, label in enumerate(labels):
            if isinstance(label, torch.Tensor) and label.numel() == 1:
                label = label.item()
            check_hashable(label, f"batch item {position}")
            ids.append(self._ids.setdefault(label, len(self._ids)))
        return ids
