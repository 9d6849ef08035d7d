"""Shared behaviour of the metrics that report every retrieval metric at once."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from quaterion.distances import Distance
from quaterion.eval.retrieval import QueryScores, check_ks


class RankingMetricMixin:
    """For metrics that return every metric of the engine (:mod:`quaterion.eval.retrieval`) as
    ``{metric name: value}``, averaged over the queries with a relevant object.

    Args:
        k: cut-off(s) of the @k metrics.
        distance_metric_name: distance used to rank.
        chunk_size: queries ranked at once (default: sized to the data).
    """

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

    @property
    def cutoffs(self) -> int | Sequence[int]:
        """The ``k`` given to the constructor: the cut-offs reported."""
        return self.k

    def from_scores(self, scores: QueryScores) -> dict[str, Tensor]:
        """Every metric averaged over the queries with a relevant candidate.

        Args:
            scores: the engine's per-query scores.

        Returns:
            ``{metric name: 0-dim tensor}``.
        """
        return scores.mean(self.k)
