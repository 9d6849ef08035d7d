"""R-precision of group-labelled data."""

from __future__ import annotations

from torch import Tensor

from quaterion.distances import Distance
from quaterion.eval.group.group_metric import GroupMetric
from quaterion.eval.retrieval import QueryScores, dense_query_scores


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
    return dense_query_scores(distance_matrix, labels).scored("r_precision").mean()


class RetrievalRPrecision(GroupMetric):
    """R-precision: share of relevant objects among the ``R`` nearest, ``R`` = group size - 1,
    averaged over the objects whose group has another member.

    Args:
        distance_metric_name: distance used to rank.
    """

    def __init__(self, distance_metric_name: Distance = Distance.COSINE):
        super().__init__(distance_metric_name)

    def from_scores(self, scores: QueryScores) -> Tensor:
        return scores.scored("r_precision").mean()
