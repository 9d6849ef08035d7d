"""Every retrieval metric of pair-labelled data in one chunked pass."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from quaterion.eval.pair.pair_metric import PairMetric
from quaterion.eval.ranking_metric import RankingMetricMixin
from quaterion.eval.retrieval import pair_inputs


class PairRetrievalMetrics(RankingMetricMixin, PairMetric):
    """precision@k, recall@k, ndcg@k (per k), r_precision, map@r and mrr of pair-labelled data.

    The other object of a pair is relevant, with the pair's score as gain. Ranks every object
    against all others chunk by chunk (see
    :func:`~quaterion.eval.retrieval.pair_retrieval_metrics`), so it scales to datasets whose
    distance matrix would not fit in memory.

    Args:
        k: cut-off(s) of the @k metrics.
        distance_metric_name: distance used to rank.
        chunk_size: queries ranked at once (default: sized to the data).
    """

    def compute(
        self,
        embeddings: Tensor,
        labels: Tensor,
        pairs: Tensor,
        subgroups: Any = None,
        query_indices: Tensor | None = None,
        query_embeddings: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """All metrics of ``embeddings`` ``[N, D]`` and ``pairs`` ``[P, 2]`` scored ``labels``.

        ``query_indices`` / ``query_embeddings`` restrict or replace the queries as in
        :func:`~quaterion.eval.retrieval.pair_retrieval_metrics`; subgroups are not used.

        Args:
            embeddings: ``[N, D]`` candidates (and queries).
            labels: ``[P]`` score of each pair.
            pairs: ``[P, 2]`` rows of each pair's two objects.
            subgroups: ``[2P]`` subgroup of each object (not used by the metrics).
            query_indices: ``[Q]`` rows used as queries (default: all).
            query_embeddings: ``[Q, D]`` separate queries; ``pairs[:, 0]`` then indexes them.
        """
        inputs = pair_inputs(
            embeddings.detach(),
            pairs,
            labels,
            query_indices=query_indices,
            query_embeddings=None if query_embeddings is None else query_embeddings.detach(),
        )
        return self.from_scores(self.score(inputs))
