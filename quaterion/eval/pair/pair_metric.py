"""Base of the metrics of pair-labelled data."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from quaterion.distances import Distance
from quaterion.eval.accumulators import PairAccumulator
from quaterion.eval.base_metric import BaseMetric
from quaterion.eval.retrieval import RetrievalInputs, pair_inputs


class PairMetric(BaseMetric):
    """A metric of ``embeddings`` ``[2P, D]`` with ``pairs`` ``[P, 2]``, their ``labels`` (scores)
    ``[P]`` and ``subgroups`` ``[2P]``, as a pairs loader produces them.

    ``compute`` works on one batch; ``update`` accumulates batches for ``evaluate``.

    Args:
        distance_metric_name: distance used to rank.
    """

    def __init__(self, distance_metric_name: Distance = Distance.COSINE):
        super().__init__(distance_metric_name)
        self.accumulator = PairAccumulator()

    @staticmethod
    def prepare_labels(labels: Tensor, pairs: Tensor, subgroups: Any = None) -> Tensor:
        """``[2P, 2P]`` matrix with the pair's score at ``[a, b]`` and ``[b, a]``, else 0.

        Subgroups are not used.

        Args:
            labels: ``[P]`` score of each pair.
            pairs: ``[P, 2]`` rows of each pair's two objects.
            subgroups: ``[2P]`` subgroup of each object (not used by the metrics).
        """
        size = 2 * len(pairs)
        matrix = torch.zeros(size, size, dtype=torch.float, device=labels.device)
        pairs = pairs.to(labels.device)
        matrix[pairs[:, 0], pairs[:, 1]] = labels.float()
        matrix[pairs[:, 1], pairs[:, 0]] = labels.float()
        return matrix

    def retrieval_inputs(
        self, embeddings: Tensor, labels: Tensor, pairs: Tensor, subgroups: Any = None
    ) -> RetrievalInputs:
        """Every object is a query; the other object of its pairs is relevant, with the pair's
        score as gain (subgroups are not used).

        Args:
            embeddings: ``[2P, D]`` embeddings of the pairs' objects.
            labels: ``[P]`` score of each pair.
            pairs: ``[P, 2]`` rows of each pair's two objects.
            subgroups: ``[2P]`` subgroup of each object (not used by the metrics).
        """
        return pair_inputs(embeddings, pairs, labels)

    def compute(
        self, embeddings: Tensor, labels: Tensor, pairs: Tensor, subgroups: Any = None
    ) -> Any:
        """The metric of one batch.

        Args:
            embeddings: ``[2P, D]`` embeddings of the pairs' objects.
            labels: ``[P]`` score of each pair.
            pairs: ``[P, 2]`` rows of each pair's two objects.
            subgroups: ``[2P]`` subgroup of each object (not used by the metrics).
        """
        return super().compute(embeddings, labels=labels, pairs=pairs, subgroups=subgroups)

    def update(
        self,
        embeddings: Tensor,
        labels: Tensor,
        pairs: Tensor,
        subgroups: Tensor,
        device: Any = None,
    ) -> None:
        """Accumulate a batch (stored on ``device``, default the embeddings' device).

        Args:
            embeddings: ``[2P, D]`` embeddings of the pairs' objects.
            labels: ``[P]`` score of each pair.
            pairs: ``[P, 2]`` rows of each pair's two objects.
            subgroups: ``[2P]`` subgroup of each object (not used by the metrics).
            device: where the batch is stored (default: the embeddings' device).
        """
        self.accumulator.update(embeddings, labels, pairs, subgroups, device)

    def evaluate(self) -> Any:
        """The metric of everything accumulated."""
        return self.compute(**self.accumulator.state)

    def reset(self) -> None:
        """Drop the accumulated batches."""
        self.accumulator.reset()
