"""Samples that similarity data loaders consume: pairs with a score, or objects with a group id."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union


@dataclass
class SimilarityPairSample:
    """Two objects and how similar they are.

    ``score`` 1.0 means similar, 0.0 dissimilar. Objects from different ``subgroup`` values may be
    used as extra negatives for each other; the default (all 0) uses none.

    Args:
        obj_a: the first object.
        obj_b: the second object.
        score: 1.0 similar, 0.0 dissimilar.
        subgroup: objects of different subgroups may serve as negatives of each other.
    """

    obj_a: Any
    obj_b: Any
    score: float = 1.0
    subgroup: int = 0


@dataclass
class SimilarityGroupSample:
    """One object and the integer id of its group: objects of one group are mutually similar.

    Args:
        obj: the object.
        group: its group.
    """

    obj: Any
    group: int


SimilaritySample = Union[SimilarityGroupSample, SimilarityPairSample]
