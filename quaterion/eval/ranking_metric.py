"""Shared behaviour of the metrics that report every retrieval metric at once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from torch import Tensor

from quaterion.distances import Distance
from quaterion.eval.retrieval import check_ks, dense_retrieval_metrics

if TYPE_CHECKING:
    from quaterion.eval.samplers import BaseSampler


class RankingMetricMixin:
    """For metrics whose ``compute`` runs the chunked engine of :mod:`quaterion.eval.retrieval`
    and returns ``{metric name: value}``."""

    def __init__(
        self,
        k: int | Sequence[int] = 1,
        distance_metric_name: Distance = Distance.COSINE,
        chunk_size: int | None = None,
    ):
        """k: cut-off(s) of the @k metrics; chunk_size: queries ranked at once (default: sized
        to the data)."""
        super().__init__(distance_metric_name)  # type: ignore[call-arg]
        check_ks(k)
        self.k = k
        self.chunk_size = chunk_size

    def raw_compute(self, distance_matrix: Tensor, labels: Tensor) -> dict[str, Tensor]:
        """All metrics of a dense ``[Q, N]`` distance matrix and labels matrix."""
        return dense_retrieval_metrics(distance_matrix, labels, self.k)

    def evaluate_with(self, sampler: BaseSampler, dataset: Any, model: Any) -> dict[str, Tensor]:
        """All metrics of a dataset, ranked chunk by chunk (no dense matrix is built)."""
        return self.compute(**sampler.retrieval_inputs(dataset, model))  # type: ignore[attr-defined]
