"""Precision@k of pair-labelled data."""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from quaterion.distances import Distance
from quaterion.eval.pair.pair_metric import PairMetric
from quaterion.eval.retrieval import QueryScores, dense_query_scores


def retrieval_precision(distance_matrix: Tensor, labels: Tensor, k: int) -> Tensor:
    """Per row with a relevant column: sum of the labels of the ``k`` nearest columns / ``k``.

    Labels are scores, so a 0.9 pair counts 0.9. Ties are ranked by column index. Rows without
    any relevant column are left out, as by every metric (see :mod:`quaterion.eval.retrieval`);
    the original counted them as 0, which lowered precision on data with negative pairs.

    Args:
        distance_matrix: ``[Q, N]`` (self-matches already pushed to the end).
        labels: ``[Q, N]`` relevance of column j to row i.
        k: number of nearest columns, ``1 <= k <= N``.

    Returns:
        ``[Q']`` precision of every row that has a relevant column, in row order.
    """
    return dense_query_scores(distance_matrix, labels, k).scored(f"precision@{k}")


class RetrievalPrecision(PairMetric):
    """Share of relevant objects among the ``k`` nearest ones, per object that has a relevant
    one; equals ``PairRetrievalMetrics(k)["precision@k"]`` with the default ``reduce_func``.

    Args:
        k: number of nearest objects looked at.
        distance_metric_name: distance used to rank.
        reduce_func: applied to the per-object values (``None``: return them all).

    Raises:
        ValueError: ``k < 1``.
    """

    def __init__(
        self,
        k: int = 1,
        distance_metric_name: Distance = Distance.COSINE,
        reduce_func: Callable[[Tensor], Tensor] | None = torch.mean,
    ):
        super().__init__(distance_metric_name)
        if k < 1:
            raise ValueError("k must be greater than 0")
        self.k = k
        self.reduce_func = reduce_func

    @property
    def cutoffs(self) -> int:
        return self.k

    def from_scores(self, scores: QueryScores) -> Tensor:
        values = scores.scored(f"precision@{self.k}")
        return values if self.reduce_func is None else self.reduce_func(values)
