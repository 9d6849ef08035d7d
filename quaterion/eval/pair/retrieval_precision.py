"""Precision@k of pair-labelled data."""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from quaterion.distances import Distance
from quaterion.eval.pair.pair_metric import PairMetric
from quaterion.eval.retrieval import per_query_retrieval_metrics


def retrieval_precision(distance_matrix: Tensor, labels: Tensor, k: int) -> Tensor:
    """Per row: sum of the labels of the ``k`` nearest columns, divided by ``k``.

    Labels are scores, so a 0.9 pair counts 0.9. Ties are ranked by column index.

    Args:
        distance_matrix: ``[Q, N]`` (self-matches already pushed to the end).
        labels: ``[Q, N]`` relevance of column j to row i.
        k: number of nearest columns, ``1 <= k <= N``.

    Returns:
        ``[Q]`` precision of every row (0 for a row without relevant columns).
    """
    metrics, _ = per_query_retrieval_metrics(distance_matrix, labels, k)
    return metrics[f"precision@{k}"].to(distance_matrix.dtype)


class RetrievalPrecision(PairMetric):
    """Share of relevant objects among the ``k`` nearest ones.

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

    def raw_compute(self, distance_matrix: Tensor, labels: Tensor) -> Tensor:
        values = retrieval_precision(distance_matrix, labels, self.k)
        return values if self.reduce_func is None else self.reduce_func(values)
