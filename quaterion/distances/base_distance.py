"""Interface every distance implements; all methods are static so the class itself is used."""

from __future__ import annotations

from torch import Tensor

from quaterion.distances.ranking_space import RankingSpace


class BaseDistance:
    """Rowwise and matrix forms of a distance and of its similarity.

    Rowwise forms compare ``x[i]`` with ``y[i]`` (``x``, ``y``: ``(B, D)`` -> ``(B,)``); matrix
    forms compare every row of ``x`` ``(Bx, D)`` with every row of ``y`` ``(By, D)`` ->
    ``(Bx, By)``, ``y=None`` meaning ``y = x``. Larger distance = less similar; larger
    similarity = more similar.
    """

    @staticmethod
    def distance(x: Tensor, y: Tensor) -> Tensor:
        """Distance between ``x[i]`` and ``y[i]``: ``(B,)``.

        Args:
            x: ``(B, D)``.
            y: ``(B, D)``.
        """
        raise NotImplementedError

    @staticmethod
    def similarity(x: Tensor, y: Tensor) -> Tensor:
        """Similarity between ``x[i]`` and ``y[i]``: ``(B,)``.

        Args:
            x: ``(B, D)``.
            y: ``(B, D)``.
        """
        raise NotImplementedError

    @staticmethod
    def distance_matrix(x: Tensor, y: Tensor | None = None) -> Tensor:
        """Distances between all rows of ``x`` and all rows of ``y``: ``(Bx, By)``.

        Args:
            x: ``(Bx, D)``.
            y: ``(By, D)``; None compares ``x`` with itself.
        """
        raise NotImplementedError

    @staticmethod
    def similarity_matrix(x: Tensor, y: Tensor | None = None) -> Tensor:
        """Similarities between all rows of ``x`` and all rows of ``y``: ``(Bx, By)``.

        Args:
            x: ``(Bx, D)``.
            y: ``(By, D)``; None compares ``x`` with itself.
        """
        raise NotImplementedError

    @staticmethod
    def ranking_space(candidates: Tensor) -> RankingSpace:
        """Order-preserving keys of this distance over ``candidates`` ``[N, D]``, for exact
        retrieval (see :mod:`quaterion.distances.ranking_space`).

        Args:
            candidates: ``[N, D]`` vectors to rank.
        """
        raise NotImplementedError
