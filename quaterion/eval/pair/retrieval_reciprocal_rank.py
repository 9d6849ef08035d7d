"""Reciprocal rank of the first relevant object, for pair-labelled data."""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from quaterion.distances import Distance
from quaterion.eval.pair.pair_metric import PairMetric
from quaterion.eval.retrieval import per_query_retrieval_metrics


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
    metrics, has_relevant = per_query_retrieval_metrics(distance_matrix, labels, 1)
    return metrics["mrr"][has_relevant].to(distance_matrix.dtype)


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

    def raw_compute(self, distance_matrix: Tensor, labels: Tensor) -> Tensor:
        values = retrieval_reciprocal_rank(distance_matrix, labels)
        return values if self.reduce_func is None else self.reduce_func(values)
