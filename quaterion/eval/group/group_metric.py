"""Base of the metrics of group-labelled data."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from quaterion.distances import Distance
from quaterion.eval.accumulators import GroupAccumulator
from quaterion.eval.base_metric import BaseMetric
from quaterion.eval.retrieval import RetrievalInputs, group_inputs


class GroupMetric(BaseMetric):
    """A metric of ``embeddings`` ``[N, D]`` with ``groups`` ``[N]``: objects of one group are
    mutually relevant.

    ``compute`` works on one batch; ``update`` accumulates batches for ``evaluate``.

    Args:
        distance_metric_name: distance used to rank.
    """

    def __init__(self, distance_metric_name: Distance = Distance.COSINE):
        super().__init__(distance_metric_name)
        self.accumulator = GroupAccumulator()

    @staticmethod
    def prepare_labels(groups: Tensor) -> Tensor:
        """``[N, N]`` bool matrix, True where two different objects share a group.

        Args:
            groups: ``[N]`` group labels.
        """
        labels = groups[:, None] == groups[None, :]
        labels.fill_diagonal_(False)
        return labels

    def retrieval_inputs(self, embeddings: Tensor, groups: Tensor) -> RetrievalInputs:
        """Every object is a query; the others of its group are relevant.

        Args:
            embeddings: ``[N, D]`` embeddings.
            groups: ``[N]`` group labels.
        """
        return group_inputs(embeddings, groups)

    def compute(self, embeddings: Tensor, groups: Tensor) -> Any:
        """The metric of one batch.

        Args:
            embeddings: ``[N, D]`` embeddings.
            groups: ``[N]`` group labels.
        """
        return super().compute(embeddings, groups=groups)

    def update(self, embeddings: Tensor, groups: Tensor, device: Any = None) -> None:
        """Accumulate a batch (stored on ``device``, default the embeddings' device).

        Args:
            embeddings: ``[B, D]`` embeddings.
            groups: ``[B]`` group labels.
            device: where the batch is stored (default: the embeddings' device).
        """
        self.accumulator.update(embeddings, groups, device)

    def evaluate(self) -> Any:
        """The metric of everything accumulated."""
        return self.compute(**self.accumulator.state)

    def reset(self) -> None:
        """Drop the accumulated batches."""
        self.accumulator.reset()
