"""Reciprocal rank of the first relevant object, for pair-labelled data."""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from quaterion.distances import Distance
from quaterion.eval.pair.pair_metric import PairMetric
from quaterion.eval.retrieval import QueryScores, dense_query_scores


def retrieval_reciprocal_rank(distance_matrix: Tensor, labels: Tensor) -> Tensor:
    """Per row with at least one relevant column: ``1 / rank`` of its nearest relevant column.

    Rows without any relevant column are left out (their reciprocal rank is undefined). Ties are
    ranked by column index. (The original emitted one value per relevant column instead of one per
    row, so rows with several relevant columns weighed more.)

    Args:
        distance_matrix: ``[Q, N]`` (self-matches already pushed to the end).
        labels: ``[Q, N]`` relevance of column j to row i (> 0 = relevant).

    Returns:
        ``[Q']`` reciprocal ranks of the rows that have a relevant column, in row order.
    """
    return dense_query_scores(distance_matrix, labels).scored("mrr")


class RetrievalReciprocalRank(PairMetric):
    """Reciprocal rank of the first relevant object.

    Args:
        distance_metric_name: distance used to rank.
        reduce_func: applied to the per-object values (``None``: return them all).
    """

    def __init__(
        self,
        distance_metric_name: Distance = Distance.COSINE,
        reduce_func: Callable[[Tensor], Tensor] | None = torch.mean,
    ):
        super().__init__(distance_metric_name)
        self.reduce_func = reduce_func

    def from_scores(self, scores: QueryScores) -> Tensor:
        values = scores.scored("mrr")
        return values if self.reduce_func is None else self.reduce_func(values)
