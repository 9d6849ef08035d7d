"""Manhattan (L1) distance."""

from __future__ import annotations

import torch
from torch import Tensor

from quaterion.distances.base_distance import BaseDistance
from quaterion.distances.ranking_space import ManhattanSpace


class Manhattan(BaseDistance):
    """L1 distance ``d = sum_k |x_k - y_k|``; similarity ``1 / (1 + d)`` in ``(0, 1]``.

    The rowwise form is ``torch.pairwise_distance(p=1)`` (``eps=1e-6`` per element, so
    ``distance(x, x) = D * 1e-6``); the matrix form is exact.
    """

    @staticmethod
    def distance(x: Tensor, y: Tensor) -> Tensor:
        return torch.pairwise_distance(x, y, p=1)

    @staticmethod
    def similarity(x: Tensor, y: Tensor) -> Tensor:
        return 1 / (1 + Manhattan.distance(x, y))

    @staticmethod
    def distance_matrix(x: Tensor, y: Tensor | None = None) -> Tensor:
        return torch.cdist(x, x if y is None else y, p=1)

    @staticmethod
    def similarity_matrix(x: Tensor, y: Tensor | None = None) -> Tensor:
        return 1 / (1 + Manhattan.distance_matrix(x, y))

    @staticmethod
    def ranking_space(candidates: Tensor) -> ManhattanSpace:
        return ManhattanSpace(candidates)
