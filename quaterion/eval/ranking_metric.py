"""Shared behaviour of the metrics that report every retrieval metric at once."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import Tensor

from quaterion.eval.retrieval import dense_retrieval_metrics

if TYPE_CHECKING:
    from quaterion.eval.samplers import BaseSampler


class RankingMetricMixin:
    """For metrics whose ``compute`` runs the chunked engine of :mod:`quaterion.eval.retrieval`
    and returns ``{metric name: value}``; they need ``k`` and ``chunk_size`` attributes."""

    k: Any
    chunk_size: int | None

    def raw_compute(self, distance_matrix: Tensor, labels: Tensor) -> dict[str, Tensor]:
        """All metrics of a dense ``[Q, N]`` distance matrix and labels matrix."""
        return dense_retrieval_metrics(distance_matrix, labels, self.k)

    def evaluate_with(self, sampler: BaseSampler, dataset: Any, model: Any) -> dict[str, Tensor]:
        """All metrics of a dataset, ranked chunk by chunk (no dense matrix is built)."""
        return self.compute(**sampler.retrieval_inputs(dataset, model))  # type: ignore[attr-defined]
