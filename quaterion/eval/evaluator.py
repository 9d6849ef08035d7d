"""Evaluate a model on a dataset with one or more metrics."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor

from quaterion.eval.base_metric import BaseMetric
from quaterion.eval.retrieval import check_ks, no_relevant_error, score_queries
from quaterion.eval.samplers import BaseSampler


class Evaluator:
    """Encodes a dataset once per ``evaluate`` call (through the sampler), ranks it once with the
    chunked engine for all metrics sharing a distance, and reads each metric off the ranking.

    Args:
        metrics: a metric, or ``{name: metric}``. A bare metric returning one value is reported
            under its class name; one returning several (such as ``GroupRetrievalMetrics``) under
            its own keys, prefixed ``"<name>/"`` when it was given a name.
        sampler: encodes the dataset and chooses the queries, e.g. ``GroupSampler`` for
            ``SimilarityGroupSample`` data or ``PairSampler`` for ``SimilarityPairSample`` data.
            Relevance comes from the data, so any metric works with either sampler.
    """

    def __init__(self, metrics: BaseMetric | dict[str, BaseMetric], sampler: BaseSampler):
        self._named = isinstance(metrics, Mapping)
        self.metrics: dict[str, BaseMetric] = (
            dict(metrics) if isinstance(metrics, Mapping) else {type(metrics).__name__: metrics}
        )
        self.sampler = sampler

    def evaluate(self, dataset: Any, model: Any) -> dict[str, Tensor]:
        """Metrics of ``model`` (a ``SimilarityModel``) on ``dataset`` (a sized or iterable
        collection of samples, not a loader).

        Raises:
            ValueError: the dataset is empty, or no query has a relevant object.

        Args:
            dataset: the samples to encode.
            model: a ``SimilarityModel``.
        """
        try:
            inputs = self.sampler.retrieval_inputs(dataset, model)
        finally:
            self.sampler.reset()
        # one ranking per distance and chunk size, deep enough for every metric's cut-offs
        settings: dict[tuple[str, int | None], list[int]] = {}
        for metric in self.metrics.values():
            settings.setdefault(_setting(metric), []).extend(check_ks(metric.cutoffs))
        scores = {
            setting: score_queries(inputs, ks, distance=setting[0], chunk_size=setting[1])
            for setting, ks in settings.items()
        }
        results: dict[str, Tensor] = {}
        for name, metric in self.metrics.items():
            metric_scores = scores[_setting(metric)]
            if not metric_scores.has_relevant.any():
                raise no_relevant_error()
            value = metric.from_scores(metric_scores)
            if isinstance(value, Mapping):
                prefix = f"{name}/" if self._named else ""
                results.update({f"{prefix}{key}": item for key, item in value.items()})
            else:
                results[name] = value
        return results


def _setting(metric: BaseMetric) -> tuple[str, int | None]:
    return metric.distance_name, metric.chunk_size
