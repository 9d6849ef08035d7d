"""R-precision of group-labelled data."""

from __future__ import annotations

from torch import Tensor

from quaterion.distances import Distance
from quaterion.eval.group.group_metric import GroupMetric
from quaterion.eval.retrieval import per_query_retrieval_metrics


def retrieval_r_precision(distance_matrix: Tensor, labels: Tensor) -> Tensor:
    """Mean over rows of ``r / R``: ``R`` = number of relevant columns of the row, ``r`` = sum of
    the labels of its ``R`` nearest columns.

    Rows without relevant columns are left out (NaN if there are none at all). This is the mean
    of the per-row values; the original divided the totals (``sum r / sum R``), which over-weights
    rows with many relevant columns.

    Args:
        distance_matrix: ``[Q, N]`` (self-matches already pushed to the end).
        labels: ``[Q, N]`` relevance of column j to row i (> 0 = relevant).

    Returns:
        0-dim tensor.
    """
    metrics, has_relevant = per_query_retrieval_metrics(distance_matrix, labels, 1)
    return metrics["r_precision"][has_relevant].mean().to(distance_matrix.dtype)


class RetrievalRPrecision(GroupMetric):
    """R-precision: share of relevant objects among the ``R`` nearest, ``R`` = group size - 1.

    Args:
        distance_metric_name: distance used to rank.
    """

    def __init__(self, distance_metric_name: Distance = Distance.COSINE):
        super().__init__(distance_metric_name)

    def raw_compute(self, distance_matrix: Tensor, labels: Tensor) -> Tensor:
        return retrieval_r_precision(distance_matrix, labels)
