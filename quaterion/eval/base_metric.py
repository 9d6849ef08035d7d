"""Base of the metrics: embeddings and targets -> the retrieval engine -> a value."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from quaterion.distances import Distance
from quaterion.eval.retrieval import (
    QueryScores,
    RetrievalInputs,
    dense_query_scores,
    score_queries,
)


class BaseMetric:
    """A metric of embeddings, read off the per-query scores of the retrieval engine
    (:mod:`quaterion.eval.retrieval`, where the averaging rule is documented).

    Every entry point ranks through the engine and ends in ``from_scores``:

    - ``compute(embeddings, **targets)``: one batch (or ``evaluate()``: everything accumulated);
    - a whole dataset, through the :class:`~quaterion.eval.evaluator.Evaluator`: ranked chunk
      by chunk, once for all its metrics; no ``[Q, N]`` matrix is built;
    - ``raw_compute(distance_matrix, labels)``: dense matrices, as in the original's API.

    Args:
        distance_metric_name: distance used to rank the embeddings.
    """

    # queries ranked at once by the engine (None: sized to the data)
    chunk_size: int | None = None

    def __init__(self, distance_metric_name: Distance = Distance.COSINE):
        self._distance_metric_name = distance_metric_name
        self.distance = Distance.get_by_name(distance_metric_name)

    @property
    def distance_name(self) -> str:
        """Name of the distance the metric ranks by (a :class:`Distance` value)."""
        return str(Distance(self._distance_metric_name))

    @property
    def cutoffs(self) -> int | Sequence[int]:
        """The ``k`` of the engine's @k metrics this metric reads."""
        return 1

    def from_scores(self, scores: QueryScores) -> Any:
        """The metric's value from the engine's per-query scores.

        Args:
            scores: the engine's per-query scores.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement from_scores")

    def retrieval_inputs(self, embeddings: Tensor, **targets: Any) -> RetrievalInputs:
        """What the engine ranks for one batch of embeddings and its targets.

        Args:
            embeddings: ``[N, D]`` embeddings.
            **targets: the batch's targets (``groups``, or ``labels``, ``pairs``, ``subgroups``).
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement retrieval_inputs")

    def score(self, inputs: RetrievalInputs) -> QueryScores:
        """Per-query scores of ``inputs`` with this metric's distance, cut-offs and chunk size.

        Args:
            inputs: what to rank, from ``retrieval_inputs``.
        """
        return score_queries(
            inputs, self.cutoffs, distance=self.distance_name, chunk_size=self.chunk_size
        )

    def compute(self, embeddings: Tensor, **targets: Any) -> Any:
        """The metric of one batch of embeddings and targets (NaN where no query has a relevant
        object: a batch need not hold two objects of a group).

        Args:
            embeddings: ``[N, D]`` embeddings.
            **targets: the batch's targets (``groups``, or ``labels``, ``pairs``, ``subgroups``).
        """
        return self.from_scores(self.score(self.retrieval_inputs(embeddings.detach(), **targets)))

    def evaluate(self) -> Any:
        """The metric of everything accumulated with ``update``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement evaluate")

    def raw_compute(self, distance_matrix: Tensor, labels: Tensor) -> Any:
        """The metric of a ``[Q, N]`` distance matrix and the matching ``[Q, N]`` labels (gains;
        > 0 = relevant). Nothing is excluded as a self-match: mask it beforehand.

        Args:
            distance_matrix: ``[Q, N]`` distances of each query to every candidate.
            labels: ``[Q, N]`` gains (relevance) of each candidate to each query; > 0 = relevant.
        """
        return self.from_scores(dense_query_scores(distance_matrix, labels, self.cutoffs))

    @staticmethod
    def prepare_labels(**targets: Tensor) -> Tensor:
        """Targets of a batch -> ``[N, N]`` labels matrix (relevance of column j to row i).

        Args:
            **targets: the batch's targets.
        """
        raise NotImplementedError("this metric does not implement prepare_labels")

    def precompute(self, embeddings: Tensor, **targets: Tensor) -> tuple[Tensor, Tensor]:
        """``(labels matrix as float, distance matrix)`` of a batch, for ``raw_compute``; the
        original's API: each row's own column holds ``max + 1``, so it ranks last.

        Args:
            embeddings: ``[N, D]`` embeddings.
            **targets: the batch's targets.
        """
        labels = self.prepare_labels(**targets)
        distance_matrix = self.distance.distance_matrix(embeddings).detach()
        exclude_self_matches(
            distance_matrix, torch.arange(len(embeddings), device=distance_matrix.device)
        )
        return labels.float(), distance_matrix


def exclude_self_matches(distance_matrix: Tensor, self_columns: Tensor) -> None:
    """Set ``distance_matrix[i, self_columns[i]]`` to ``max + 1`` (in place) so a row's own
    embedding ranks after every other candidate (the dense matrices of the original's API).

    Args:
        distance_matrix: ``[Q, N]`` distances of each query to every candidate.
        self_columns: ``[Q]`` the column of each row's own embedding.
    """
    rows = torch.arange(len(self_columns), device=distance_matrix.device)
    distance_matrix[rows, self_columns.to(distance_matrix.device)] = distance_matrix.max() + 1
