"""Cosine distance."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from quaterion.distances.base_distance import BaseDistance
from quaterion.distances.ranking_space import CosineSpace


class Cosine(BaseDistance):
    """Cosine similarity and distance.

    The rowwise and matrix forms use different scales (kept from the original because margins
    tuned by users depend on them):

    - rowwise: ``similarity = cos(x_i, y_i)`` in ``[-1, 1]``, ``distance = 1 - cos`` in ``[0, 2]``;
    - matrix: ``similarity_matrix = (cos + 1) / 2`` in ``[0, 1]``,
      ``distance_matrix = 1 - similarity_matrix = (1 - cos) / 2`` in ``[0, 1]``.

    So ``distance_matrix(x, y)[i, i] == distance(x, y)[i] / 2``.
    """

    @staticmethod
    def distance(x: Tensor, y: Tensor) -> Tensor:
        return 1 - Cosine.similarity(x, y)

    @staticmethod
    def similarity(x: Tensor, y: Tensor) -> Tensor:
        return torch.cosine_similarity(x, y)

    @staticmethod
    def distance_matrix(x: Tensor, y: Tensor | None = None) -> Tensor:
        return 1 - Cosine.similarity_matrix(x, y)

    @staticmethod
    def similarity_matrix(x: Tensor, y: Tensor | None = None) -> Tensor:
        x_norm = F.normalize(x, p=2, dim=1)
        y_norm = x_norm if y is None else F.normalize(y, p=2, dim=1)
        return (x_norm @ y_norm.T + 1) / 2

    @staticmethod
    def ranking_space(candidates: Tensor) -> CosineSpace:
        return CosineSpace(candidates)
