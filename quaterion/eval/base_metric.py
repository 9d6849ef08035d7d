"""Base of the batch metrics: distances and labels of a batch -> a value."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from quaterion.distances import Distance
from quaterion.eval.retrieval import no_relevant_error

if TYPE_CHECKING:
    from quaterion.eval.samplers import BaseSampler


class BaseMetric:
    """A metric of embeddings: ``compute`` = ``precompute`` (distance matrix and labels matrix,
    self-matches pushed to the end) then ``raw_compute`` on those matrices.

    Args:
        distance_metric_name: distance used to rank the embeddings.
    """

    def __init__(self, distance_metric_name: Distance = Distance.COSINE):
        self._distance_metric_name = distance_metric_name
        self.distance = Distance.get_by_name(distance_metric_name)

    def compute(self, *args: Any, **kwargs: Any) -> Tensor:
        """The metric of one batch of embeddings and targets."""
        raise NotImplementedError(f"{type(self).__name__} does not implement compute")

    def evaluate(self) -> Tensor:
        """The metric of everything accumulated with ``update``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement evaluate")

    def raw_compute(self, distance_matrix: Tensor, labels: Tensor) -> Tensor:
        """The metric of a ``[Q, N]`` distance matrix and the matching ``[Q, N]`` labels."""
        raise NotImplementedError(f"{type(self).__name__} does not implement raw_compute")

    @staticmethod
    def prepare_labels(**targets: Tensor) -> Tensor:
        """Targets of a batch -> ``[N, N]`` labels matrix (relevance of column j to row i)."""
        raise NotImplementedError("this metric does not implement prepare_labels")

    def precompute(self, embeddings: Tensor, **targets: Tensor) -> tuple[Tensor, Tensor]:
        """``(labels matrix as float, distance matrix)`` of a batch, self-matches ranked last."""
        labels = self.prepare_labels(**targets)
        distance_matrix = self.distance.distance_matrix(embeddings).detach()
        exclude_self_matches(
            distance_matrix, torch.arange(len(embeddings), device=distance_matrix.device)
        )
        return labels.float(), distance_matrix

    def evaluate_with(self, sampler: BaseSampler, dataset: Any, model: Any) -> Any:
        """The metric of a dataset, as the :class:`~quaterion.eval.evaluator.Evaluator` asks.

        Default: ``raw_compute`` on the dense matrices from ``sampler.sample``. Metrics that rank
        without a dense matrix override it.

        Raises:
            ValueError: no query has a relevant object (e.g. every group has a single member).
        """
        labels, distance_matrix = sampler.sample(dataset, self, model)
        if not (labels > 0).any():
            raise no_relevant_error()
        return self.raw_compute(distance_matrix, labels)


def exclude_self_matches(distance_matrix: Tensor, self_columns: Tensor) -> None:
    """Set ``distance_matrix[i, self_columns[i]]`` to ``max + 1`` (in place) so a row's own
    embedding ranks after every other candidate."""
    rows = torch.arange(len(self_columns), device=distance_matrix.device)
    distance_matrix[rows, self_columns.to(distance_matrix.device)] = distance_matrix.max() + 1
