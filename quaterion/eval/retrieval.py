"""Exact nearest-neighbour retrieval metrics, computed in chunks of queries: the one engine under
every evaluation surface (the original metric classes and samplers, the metric sets, the
validation callback and the ``quaterion evaluate`` command).

Every query is ranked against every candidate (brute force, no approximation) one chunk of
queries at a time, on the embeddings' device, so memory stays at about ``chunk_size x N`` keys.
Ranking keys come from the distance's ``ranking_space`` (:mod:`quaterion.distances`).

Relevance has one representation, :class:`~quaterion.eval.relevance.Relevance`, built from group
labels (same group = relevant, gain 1) or from pairs (gain = the pair's score; a score <= 0 is not
relevant), or from a dense labels matrix for ``raw_compute``.

Self-match rule: a query that is one of the candidates (``self_index``) never retrieves itself;
its own column is left out of the ranking. (Only ``BaseMetric.precompute``, kept for the
original's API, still writes ``max + 1`` on the diagonal of a dense matrix, which ranks it last.)

Per-query averaging (the one rule every surface follows): a metric is computed per query, and a
reported value is the mean over the queries that have at least one relevant candidate (``R > 0``).
Queries without one -- the only member of a group, an object whose pairs all score 0 -- are left
out of every average, since no ranking of theirs can be right or wrong. So ``RetrievalPrecision``
(which returns those per-query values), ``RetrievalReciprocalRank``, ``RetrievalRPrecision`` and
the metric sets (``GroupRetrievalMetrics``, ``PairRetrievalMetrics``) agree on the same data.

For each query with ``R > 0`` one pass gives:

- ``precision@k``: sum of the gains of the first k results / k;
- ``recall@k``: sum of the gains of the first k results / sum of all its gains;
- ``ndcg@k``: DCG of the first k results (linear gains, discount ``1/log2(rank+1)``) / ideal DCG;
- ``r_precision``: sum of the gains of the first R results / R;
- ``map@r``: ``1/R * sum_{i<=R} rel_i * precision@i`` with binary relevance (gain > 0);
- ``mrr``: ``1 / rank`` of the first relevant candidate in the full ranking (not truncated).

Candidates are ordered by (distance, candidate index), with near-ties settled by keys computed
pair by pair (see :mod:`quaterion.eval.ranking`), so the ranking, and every metric, does not
depend on the chunk size (on a given device: a CPU and a GPU may round two near-equal distances
apart differently).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from quaterion.distances import Distance
from quaterion.eval.ranking import CandidateIndex, KeyBlock, serial_if_cpu
from quaterion.eval.relevance import Relevance, RelevanceChunk

# Keys held per chunk when no chunk_size is given: 2**27 entries = 512 MiB in float32.
DEFAULT_BLOCK_ELEMENTS = 2**27


@dataclass(frozen=True)
class RetrievalInputs:
    """What the engine ranks: ``queries`` ``[Q, D]`` against ``candidates`` ``[N, D]``, with the
    ``relevance`` of each query and, when the queries are candidates too, ``self_index`` ``[Q]``
    (the candidate each query must not retrieve).

    Args:
        queries: ``[Q, D]`` query vectors.
        candidates: ``[N, D]`` candidate vectors.
        relevance: the relevant candidates of each query.
        self_index: ``[Q]`` each query's own candidate row when queries are candidates, else None.
    """

    queries: Tensor
    candidates: Tensor
    relevance: Relevance
    self_index: Tensor | None


@dataclass(frozen=True)
class QueryScores:
    """Per-query metrics: ``values[name]`` ``[Q]`` float64 (defined where ``has_relevant``), in
    the order of the queries; ``dtype`` is the one results are reported in.

    Args:
        values: metric name -> ``[Q]`` float64 values.
        has_relevant: ``[Q]`` which queries have a relevant candidate.
        dtype: the dtype results are returned in.
    """

    values: dict[str, Tensor]
    has_relevant: Tensor
    dtype: torch.dtype

    def scored(self, name: str) -> Tensor:
        """Values of ``name`` of the queries that have a relevant candidate, in query order.

        Args:
            name: a metric name, e.g. ``"map@r"``.
        """
        return self.values[name][self.has_relevant].to(self.dtype)

    def totals(self) -> tuple[dict[str, Tensor], int]:
        """``({name: float64 sum over scored queries}, number of scored queries)``: what
        processes add up before dividing (see :meth:`mean`)."""
        sums = {name: values[self.has_relevant].sum() for name, values in self.values.items()}
        return sums, int(self.has_relevant.sum())

    def mean(self, k: int | Sequence[int] | None = None) -> dict[str, Tensor]:
        """Each metric averaged over the queries with a relevant candidate; given ``k``, only
        the @k metrics of those cut-offs (and the others without a cut-off).

        Raises:
            ValueError: no query has a relevant candidate.

        Args:
            k: cut-off(s) to report (None: all).
        """
        sums, count = self.totals()
        if k is not None:
            wanted = set(metric_names(check_ks(k)))
            sums = {name: total for name, total in sums.items() if name in wanted}
        return average(sums, count, self.dtype)


def metric_names(ks: Sequence[int]) -> list[str]:
    """Names of the metrics the engine reports for the cut-offs ``ks``, in its order.

    Args:
        ks: the cut-offs.
    """
    at_k = [f"{name}@{k}" for k in ks for name in ("precision", "recall", "ndcg")]
    return [*at_k, "r_precision", "map@r", "mrr"]


def average(sums: dict[str, Tensor], count: int, dtype: torch.dtype) -> dict[str, Tensor]:
    """``sums / count`` per metric, in ``dtype``; the error of :func:`no_relevant_error` when no
    query was scored.

    Args:
        sums: metric name -> sum over scored queries.
        count: number of scored queries.
        dtype: dtype of the results.
    """
    if count == 0:
        raise no_relevant_error()
    return {name: (total / count).to(dtype) for name, total in sums.items()}


def group_inputs(
    embeddings: Tensor,
    groups: Tensor,
    *,
    query_indices: Tensor | None = None,
    query_embeddings: Tensor | None = None,
    query_groups: Tensor | None = None,
) -> RetrievalInputs:
    """Inputs of group-labelled data (arguments as in :func:`retrieval_metrics`).

    Args:
        embeddings: as in :func:`retrieval_metrics`.
        groups: as in :func:`retrieval_metrics`.
        query_indices: as in :func:`retrieval_metrics`.
        query_embeddings: as in :func:`retrieval_metrics`.
        query_groups: as in :func:`retrieval_metrics`.
    """
    groups = _labels_1d(groups, embeddings, "groups")
    queries, self_index = _queries(embeddings, query_indices, query_embeddings)
    if query_embeddings is None:
        if query_groups is not None:
            raise ValueError("query_groups is only used with query_embeddings; drop it")
        query_groups = groups[self_index]
    else:
        if query_groups is None:
            raise ValueError("query_embeddings needs query_groups, the group of each query")
        query_groups = _labels_1d(query_groups, query_embeddings, "query_groups")
    relevance = Relevance.from_groups(query_groups, groups, same_set=self_index is not None)
    return RetrievalInputs(queries, embeddings, relevance, self_index)


def pair_inputs(
    embeddings: Tensor,
    pairs: Tensor,
    scores: Tensor | None = None,
    *,
    query_indices: Tensor | None = None,
    query_embeddings: Tensor | None = None,
) -> RetrievalInputs:
    """Inputs of pair-labelled data (arguments as in :func:`pair_retrieval_metrics`).

    Args:
        embeddings: as in :func:`pair_retrieval_metrics`.
        pairs: as in :func:`pair_retrieval_metrics`.
        scores: as in :func:`pair_retrieval_metrics`.
        query_indices: as in :func:`pair_retrieval_metrics`.
        query_embeddings: as in :func:`pair_retrieval_metrics`.
    """
    queries, self_index = _queries(embeddings, query_indices, query_embeddings)
    pairs = torch.as_tensor(pairs, device=embeddings.device)
    if pairs.dim() != 2 or pairs.shape[1] != 2 or pairs.is_floating_point():
        raise ValueError(
            f"pairs must be an integer tensor of shape [P, 2], got {tuple(pairs.shape)}"
        )
    pairs = pairs.long()
    if scores is None:
        scores = torch.ones(len(pairs), dtype=torch.float64, device=embeddings.device)
    scores = torch.as_tensor(scores, device=embeddings.device).to(torch.float64)
    if scores.shape != (len(pairs),):
        raise ValueError(
            f"scores must have one value per pair ({len(pairs)}), got {tuple(scores.shape)}"
        )
    num_queries = len(embeddings) if query_embeddings is None else len(query_embeddings)
    for column, size, what in ((0, num_queries, "queries"), (1, len(embeddings), "embeddings")):
        if len(pairs) and (pairs[:, column].min() < 0 or pairs[:, column].max() >= size):
            raise ValueError(f"pairs[:, {column}] must index the {size} {what}")
    relevance = Relevance.from_pairs(
        pairs, scores, num_queries, len(embeddings), symmetric=query_embeddings is None
    )
    if self_index is not None:
        relevance = relevance.select(self_index)
    return RetrievalInputs(queries, embeddings, relevance, self_index)


def retrieval_metrics(
    embeddings: Tensor,
    groups: Tensor,
    k: int | Sequence[int] = 1,
    *,
    distance: Distance | str = Distance.COSINE,
    query_indices: Tensor | None = None,
    query_embeddings: Tensor | None = None,
    query_groups: Tensor | None = None,
    chunk_size: int | None = None,
) -> dict[str, Tensor]:
    """Retrieval metrics of group-labelled data: every candidate of the query's group is relevant.

    Args:
        embeddings: ``[N, D]`` candidates; also the queries unless ``query_embeddings`` is given.
        groups: ``[N]`` group label of each candidate.
        k: cut-off(s) of ``precision@k``, ``recall@k`` and ``ndcg@k``.
        distance: how candidates are ranked (a :class:`Distance` or its name).
        query_indices: ``[Q]`` rows of ``embeddings`` to use as queries (default: all).
        query_embeddings: ``[Q, D]`` separate queries, with ``query_groups`` ``[Q]``; then no
            candidate is excluded as a self-match.
        chunk_size: queries ranked at once (default: as many as fit 2**27 keys, 512 MiB).
        query_groups: ``[Q]`` group of each of ``query_embeddings``.

    Returns:
        ``{"precision@k", "recall@k", "ndcg@k" (per k), "r_precision", "map@r", "mrr"}``,
        0-dim tensors in the embeddings' dtype.
    """
    inputs = group_inputs(
        embeddings,
        groups,
        query_indices=query_indices,
        query_embeddings=query_embeddings,
        query_groups=query_groups,
    )
    return score_queries(inputs, k, distance=distance, chunk_size=chunk_size).mean()


def pair_retrieval_metrics(
    embeddings: Tensor,
    pairs: Tensor,
    scores: Tensor | None = None,
    k: int | Sequence[int] = 1,
    *,
    distance: Distance | str = Distance.COSINE,
    query_indices: Tensor | None = None,
    query_embeddings: Tensor | None = None,
    chunk_size: int | None = None,
) -> dict[str, Tensor]:
    """Retrieval metrics of pair-labelled data: the other object of a pair is relevant.

    Args:
        embeddings: ``[N, D]`` candidates; also the queries unless ``query_embeddings`` is given.
        pairs: ``[P, 2]`` row indices. Without ``query_embeddings`` both columns index
            ``embeddings`` and each pair makes either object relevant to the other; with it,
            ``pairs[:, 0]`` indexes the queries and ``pairs[:, 1]`` the candidates.
        scores: ``[P]`` gain of each pair (default 1); ``<= 0`` means not relevant. A pair given
            twice counts once, with its highest score.
        k: as in :func:`retrieval_metrics`.
        distance: as in :func:`retrieval_metrics`.
        query_indices: as in :func:`retrieval_metrics`.
        query_embeddings: as in :func:`retrieval_metrics`.
        chunk_size: as in :func:`retrieval_metrics`.

    Returns:
        Same keys as :func:`retrieval_metrics`.
    """
    inputs = pair_inputs(
        embeddings, pairs, scores, query_indices=query_indices, query_embeddings=query_embeddings
    )
    return score_queries(inputs, k, distance=distance, chunk_size=chunk_size).mean()


def dense_query_scores(
    distance_matrix: Tensor, labels: Tensor, k: int | Sequence[int] = 1
) -> QueryScores:
    """Per-query metrics from a full ``[Q, N]`` distance matrix and a ``[Q, N]`` gain matrix
    (``raw_compute`` of the original's API).

    Nothing is excluded as a self-match here: mask it in ``distance_matrix`` beforehand.

    Args:
        distance_matrix: ``[Q, N]`` distances of each query to every candidate.
        labels: ``[Q, N]`` gains (relevance) of each candidate to each query; > 0 = relevant.
        k: cut-off(s) of the @k metrics.
    """
    if labels.shape != distance_matrix.shape or distance_matrix.dim() != 2:
        raise ValueError(
            f"labels {tuple(labels.shape)} and distance_matrix {tuple(distance_matrix.shape)} "
            "must be matrices of the same shape"
        )
    ks = check_ks(k, distance_matrix.shape[1])
    relevance = Relevance.from_dense(labels)
    chunk = relevance.chunk(0, len(labels), None, distance_matrix.shape[1])
    metrics = _per_query_metrics(KeyBlock.given(distance_matrix), chunk, ks)
    return QueryScores(metrics, relevance.counts > 0, distance_matrix.dtype)


def ranked_topk(keys: Tensor, k: int) -> Tensor:
    """Columns of the ``k`` smallest keys of each row of ``keys`` ``[c, N]``, ordered by
    (key, column index) -- unlike a bare ``torch.topk``, unique even with tied keys.

    Args:
        keys: ``[c, N]`` keys; smaller = closer.
        k: columns per row.
    """
    return KeyBlock.given(keys).topk(k)


def score_queries(
    inputs: RetrievalInputs,
    k: int | Sequence[int] = 1,
    *,
    distance: Distance | str = Distance.COSINE,
    chunk_size: int | None = None,
) -> QueryScores:
    """Rank every query of ``inputs`` chunk by chunk; every metric of every query.

    Args:
        inputs: from :func:`group_inputs` or :func:`pair_inputs` (or a sampler).
        k: cut-off(s) of the @k metrics.
        distance: how candidates are ranked (a :class:`Distance` or its name).
        chunk_size: queries ranked at once (default: as many as fit 2**27 keys, 512 MiB).
    """
    Distance.get_by_name(distance)  # a clear error for unknown names
    candidates, self_index = inputs.candidates, inputs.self_index
    ks = check_ks(k, len(candidates) - (self_index is not None), self_index is not None)
    if chunk_size is None:
        chunk_size = max(1, DEFAULT_BLOCK_ELEMENTS // max(len(candidates), 1))
    elif isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be an int of at least 1, got {chunk_size!r}")
    index = CandidateIndex(candidates, distance)
    parts: dict[str, list[Tensor]] = {}
    for lo in range(0, len(inputs.queries), chunk_size):
        hi = min(lo + chunk_size, len(inputs.queries))
        excluded = None if self_index is None else self_index[lo:hi]
        block = index.block(inputs.queries[lo:hi], excluded)
        with serial_if_cpu(block.keys):
            chunk = inputs.relevance.chunk(lo, hi, excluded, len(candidates))
        for name, values in _per_query_metrics(block, chunk, ks).items():
            parts.setdefault(name, []).append(values)
    values = {name: torch.cat(chunks) for name, chunks in parts.items()}
    return QueryScores(values, inputs.relevance.counts > 0, candidates.dtype)


def _per_query_metrics(
    block: KeyBlock, relevance: RelevanceChunk, ks: tuple[int, ...]
) -> dict[str, Tensor]:
    """All metrics of one chunk of queries, ``[c]`` float64 each (undefined where R == 0)."""
    counts = relevance.counts
    depth = max(max(ks), int(counts.max()) if len(counts) else 0)
    ranked = block.ranked_gains(depth, relevance.gains_at)  # [c, depth]
    with serial_if_cpu(ranked):
        metrics = _ranking_metrics(ranked, relevance.gains, counts, ks)
    first_rank = _first_relevant_rank(block, ranked > 0, relevance)
    metrics["mrr"] = 1.0 / (first_rank.to(torch.float64) + 1)
    return metrics


def _ranking_metrics(
    ranked: Tensor, gains: Tensor, counts: Tensor, ks: tuple[int, ...]
) -> dict[str, Tensor]:
    """Metrics read off the gains of the top of each ranking ``[c, depth]`` (all but mrr)."""
    depth = ranked.shape[1]
    positions = torch.arange(1, depth + 1, device=ranked.device, dtype=torch.float64)
    discounts = 1.0 / torch.log2(positions + 1)
    ideal = gains.sort(dim=1, descending=True).values
    ideal = F.pad(ideal, (0, max(0, depth - ideal.shape[1])))[:, :depth]
    relevant = counts.to(torch.float64)
    metrics: dict[str, Tensor] = {}
    for k in ks:
        found = ranked[:, :k].sum(dim=1)
        metrics[f"precision@{k}"] = found / k
        metrics[f"recall@{k}"] = found / gains.sum(dim=1)
        dcg = ranked[:, :k] @ discounts[:k]
        metrics[f"ndcg@{k}"] = dcg / (ideal[:, :k] @ discounts[:k])
    within_r = positions <= relevant[:, None]
    hits = ranked > 0
    metrics["r_precision"] = (ranked * within_r).sum(dim=1) / relevant
    precision_at = hits.cumsum(dim=1) / positions
    metrics["map@r"] = (precision_at * (hits & within_r)).sum(dim=1) / relevant
    return metrics


def _first_relevant_rank(block: KeyBlock, hits: Tensor, relevance: RelevanceChunk) -> Tensor:
    """0-based rank of each query's first relevant candidate in its full ranking: read from the
    top list when it holds one, otherwise counted over the whole row."""
    rank = hits.to(torch.uint8).argmax(dim=1)
    missing = (~hits.any(dim=1) & (relevance.counts > 0)).nonzero().squeeze(1)
    if len(missing):
        cols = relevance.cols[missing]
        key, col = block.best_of(missing, cols, relevance.gains[missing] > 0)
        rank[missing] = block.rank_of(missing, key, col)
    return rank


def _queries(
    embeddings: Tensor, query_indices: Tensor | None, query_embeddings: Tensor | None
) -> tuple[Tensor, Tensor | None]:
    """``(queries, self_index)``: self_index[i] is the candidate that query i must not retrieve."""
    _check_embeddings(embeddings, "embeddings")
    if query_embeddings is not None:
        if query_indices is not None:
            raise ValueError("give query_indices or query_embeddings, not both")
        _check_embeddings(query_embeddings, "query_embeddings")
        if query_embeddings.shape[1] != embeddings.shape[1]:
            raise ValueError(
                f"query_embeddings have dimension {query_embeddings.shape[1]}, embeddings "
                f"{embeddings.shape[1]}"
            )
        return query_embeddings.to(embeddings.device, embeddings.dtype), None
    if query_indices is None:
        return embeddings, torch.arange(len(embeddings), device=embeddings.device)
    query_indices = torch.as_tensor(query_indices, device=embeddings.device).long()
    if query_indices.dim() != 1 or (
        len(query_indices) and (query_indices.min() < 0 or query_indices.max() >= len(embeddings))
    ):
        raise ValueError(
            f"query_indices must be a 1-D tensor of rows of the {len(embeddings)} embeddings"
        )
    return embeddings[query_indices], query_indices


def _check_embeddings(embeddings: Tensor, name: str) -> None:
    if not isinstance(embeddings, Tensor) or embeddings.dim() != 2:
        shape = tuple(embeddings.shape) if isinstance(embeddings, Tensor) else type(embeddings)
        raise ValueError(f"{name} must be a [N, D] tensor, got {shape}")
    if len(embeddings) == 0:
        raise ValueError(f"{name} is empty: nothing to rank")
    if not embeddings.is_floating_point():
        raise ValueError(f"{name} must be floating point, got {embeddings.dtype}")
    if not torch.isfinite(torch.stack(torch.aminmax(embeddings))).all():  # NaN propagates
        raise ValueError(f"{name} contain NaN or infinite values; check the model's outputs")


def _labels_1d(labels: Tensor, embeddings: Tensor, name: str) -> Tensor:
    labels = torch.as_tensor(labels, device=embeddings.device)
    if labels.shape != (len(embeddings),):
        raise ValueError(
            f"{name} must hold one label per embedding ({len(embeddings)}), got shape "
            f"{tuple(labels.shape)}"
        )
    return labels


def check_ks(
    k: int | Sequence[int], num_candidates: int | None = None, excluded_self: bool = False
) -> tuple[int, ...]:
    """The distinct cut-offs of ``k`` (an int or a sequence), each in ``1..num_candidates``.

    Args:
        k: an int or a sequence of ints.
        num_candidates: candidates each query ranks (None: not checked).
        excluded_self: a query's own row is not a candidate (named in the error).
    """
    ks = tuple(k) if isinstance(k, (list, tuple, range)) else (k,)
    if not ks or any(isinstance(v, bool) or not isinstance(v, int) for v in ks):
        raise ValueError(f"k must be a positive int or a non-empty sequence of them, got {k!r}")
    if min(ks) < 1:
        raise ValueError(f"k must be greater than 0, got {k!r}")
    if num_candidates is not None and max(ks) > num_candidates:
        why = " (the query itself is excluded)" if excluded_self else ""
        raise ValueError(
            f"k={max(ks)} is larger than the {num_candidates} candidates each query is ranked "
            f"against{why}; use a smaller k"
        )
    return tuple(dict.fromkeys(ks))


def no_relevant_error() -> ValueError:
    """The error for data where no query has a relevant candidate."""
    return ValueError(
        "no query has a relevant candidate (every group has a single member, or no pair has a "
        "positive score), so no retrieval metric is defined"
    )
