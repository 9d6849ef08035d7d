"""Every retrieval metric of group-labelled data in one chunked pass."""

from __future__ import annotations

from torch import Tensor

from quaterion.eval.group.group_metric import GroupMetric
from quaterion.eval.ranking_metric import RankingMetricMixin
from quaterion.eval.retrieval import group_inputs


class GroupRetrievalMetrics(RankingMetricMixin, GroupMetric):
    """precision@k, recall@k, ndcg@k (per k), r_precision, map@r and mrr of group-labelled data.

    Ranks every object against all others chunk by chunk (see
    :func:`~quaterion.eval.retrieval.retrieval_metrics`), so it scales to datasets whose
    distance matrix would not fit in memory.

    Args:
        k: cut-off(s) of the @k metrics.
        distance_metric_name: distance used to rank.
        chunk_size: queries ranked at once (default: sized to the data).
    """

    def compute(
        self,
        embeddings: Tensor,
        groups: Tensor,
        query_indices: Tensor | None = None,
        query_embeddings: Tensor | None = None,
        query_groups: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """All metrics of ``embeddings`` ``[N, D]`` labelled ``groups`` ``[N]``.

        ``query_indices`` / ``query_embeddings`` (with ``query_groups``) restrict or replace the
        queries as in :func:`~quaterion.eval.retrieval.retrieval_metrics`.

        Args:
            embeddings: ``[N, D]`` candidates (and queries).
            groups: ``[N]`` group labels.
            query_indices: ``[Q]`` rows used as queries (default: all).
            query_embeddings: ``[Q, D]`` separate queries, with ``query_groups``.
            query_groups: ``[Q]`` group of each separate query.
        """
        inputs = group_inputs(
            embeddings.detach(),
            groups,
            query_indices=query_indices,
            query_embeddings=None if query_embeddings is None else query_embeddings.detach(),
            query_groups=query_groups,
        )
        return self.from_scores(self.score(inputs))
