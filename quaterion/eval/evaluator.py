"""Evaluate a model on a dataset with one or more metrics."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor

from quaterion.eval.base_metric import BaseMetric
from quaterion.eval.samplers import BaseSampler


class Evaluator:
    """Encodes a dataset once per ``evaluate`` call (through the sampler) and computes metrics.

    Args:
        metrics: a metric, or ``{name: metric}``. A bare metric returning one value is reported
            under its class name; one returning several (such as ``GroupRetrievalMetrics``) under
            its own keys, prefixed ``"<name>/"`` when it was given a name.
        sampler: encodes the dataset and serves it to the metrics, e.g. ``GroupSampler`` for
            ``SimilarityGroupSample`` data or ``PairSampler`` for ``SimilarityPairSample`` data.
    """

    def __init__(self, metrics: BaseMetric | dict[str, BaseMetric], sampler: BaseSampler):
        self._named = isinstance(metrics, Mapping)
        self.metrics: dict[str, BaseMetric] = (
            dict(metrics) if isinstance(metrics, Mapping) else {type(metrics).__name__: metrics}
        )
        self.sampler = sampler

    def evaluate(self, dataset: Any, model: Any) -> dict[str, Tensor]:
        """Metrics of ``model`` (a ``SimilarityModel``) on ``dataset`` (a sized or iterable
        collection of samples, not a loader)."""
        results: dict[str, Tensor] = {}
        try:
            for name, metric in self.metrics.items():
                value = metric.evaluate_with(self.sampler, dataset, model)
                if isinstance(value, Mapping):
                    prefix = f"{name}/" if self._named else ""
                    results.update({f"{prefix}{key}": item for key, item in value.items()})
                else:
                    results[name] = value
        finally:
            self.sampler.reset()
        return results
