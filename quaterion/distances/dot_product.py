"""Dot-product similarity."""

from __future__ import annotations

from torch import Tensor

from quaterion.distances.base_distance import BaseDistance
from quaterion.distances.ranking_space import RankingSpace


class DotProduct(BaseDistance):
    """Similarity ``x . y`` (unbounded); distance is its negation ``-x . y``."""

    @staticmethod
    def distance(x: Tensor, y: Tensor) -> Tensor:
        return -DotProduct.similarity(x, y)

    @staticmethod
    def similarity(x: Tensor, y: Tensor) -> Tensor:
        return (x * y).sum(dim=-1)

    @staticmethod
    def distance_matrix(x: Tensor, y: Tensor | None = None) -> Tensor:
        return -DotProduct.similarity_matrix(x, y)

    @staticmethod
    def similarity_matrix(x: Tensor, y: Tensor | None = None) -> Tensor:
        return x @ (x if y is None else y).T

    @staticmethod
    def ranking_space(candidates: Tensor) -> RankingSpace:
        return RankingSpace(candidates)
