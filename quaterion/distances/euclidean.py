"""Euclidean (L2) distance."""

from __future__ import annotations

import torch
from torch import Tensor

from quaterion.distances.base_distance import BaseDistance
from quaterion.distances.ranking_space import EuclideanSpace


class Euclidean(BaseDistance):
    """L2 distance ``d``; similarity ``1 / (1 + d)`` in ``(0, 1]``.

    The rowwise form is ``torch.pairwise_distance`` (which adds ``eps=1e-6`` to each difference,
    so ``distance(x, x) = sqrt(D) * 1e-6``); the matrix form is ``torch.cdist`` (exact zero on
    identical rows).
    """

    @staticmethod
    def distance(x: Tensor, y: Tensor) -> Tensor:
        return torch.pairwise_distance(x, y, p=2)

    @staticmethod
    def similarity(x: Tensor, y: Tensor) -> Tensor:
        return 1 / (1 + Euclidean.distance(x, y))

    @staticmethod
    def distance_matrix(x: Tensor, y: Tensor | None = None) -> Tensor:
        return torch.cdist(x, x if y is None else y, p=2)

    @staticmethod
    def similarity_matrix(x: Tensor, y: Tensor | None = None) -> Tensor:
        return 1 / (1 + Euclidean.distance_matrix(x, y))

    @staticmethod
    def ranking_space(candidates: Tensor) -> EuclideanSpace:
        return EuclideanSpace(candidates)
