"""Which candidates are relevant to each query, and how much (the gains)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class Relevance:
    """Relevant candidates of each query, as runs of one flat list (CSR-like).

    Query ``q``'s run is ``cols[starts[q] : starts[q] + lengths[q]]`` (ascending) with ``gains``
    (None = all 1). A run may hold the query itself, which never counts; ``counts[q]`` is the
    number of relevant candidates (R). Group data also keeps the labels (``labels``: candidates',
    ``query_labels``), which look gains up faster than the runs.

    Args:
        starts: ``[Q]`` start of each query's run in ``cols``.
        lengths: ``[Q]`` length of each run.
        cols: relevant candidates, ascending within each run.
        gains: their gains, or None for gain 1.
        counts: ``[Q]`` relevant candidates per query.
        labels: ``[N]`` candidate labels (group data), or None.
        query_labels: ``[Q]`` query labels (group data), or None.
    """

    starts: Tensor
    lengths: Tensor
    cols: Tensor
    gains: Tensor | None
    counts: Tensor
    labels: Tensor | None = None
    query_labels: Tensor | None = None

    @staticmethod
    def from_groups(query_groups: Tensor, groups: Tensor, same_set: bool) -> Relevance:
        """Candidates of the query's group (``same_set``: the query is one of them).

        Args:
            query_groups: ``[Q]`` group of each query.
            groups: ``[N]`` group of each candidate.
            same_set: the queries are candidates themselves.
        """
        members = torch.argsort(groups, stable=True)
        sorted_groups = groups[members].contiguous()
        query_groups = query_groups.to(groups.dtype).contiguous()
        starts = torch.searchsorted(sorted_groups, query_groups)
        lengths = torch.searchsorted(sorted_groups, query_groups, right=True) - starts
        counts = lengths - 1 if same_set else lengths
        return Relevance(starts, lengths, members, None, counts, groups, query_groups)

    @staticmethod
    def from_pairs(
        pairs: Tensor, scores: Tensor, num_queries: int, num_candidates: int, symmetric: bool
    ) -> Relevance:
        """``pairs[:, 1]`` is relevant to ``pairs[:, 0]`` with gain ``scores`` (and vice versa if
        ``symmetric``, where self-pairs are dropped). Scores <= 0 are dropped; a repeated pair
        keeps its highest score.

        Args:
            pairs: ``[P, 2]`` (query, candidate) indices.
            scores: ``[P]`` gains.
            num_queries: number of queries.
            num_candidates: number of candidates.
            symmetric: each pair also makes the query relevant to the candidate.
        """
        rows, cols = pairs[:, 0], pairs[:, 1]
        if symmetric:
            rows, cols, scores = torch.cat([rows, cols]), torch.cat([cols, rows]), scores.repeat(2)
        keep = scores > 0
        if symmetric:
            keep &= rows != cols
        unique, inverse = torch.unique(
            rows[keep] * num_candidates + cols[keep], return_inverse=True
        )
        gains = torch.zeros(len(unique), dtype=scores.dtype, device=scores.device)
        gains.scatter_reduce_(0, inverse, scores[keep], reduce="amax", include_self=False)
        lengths = torch.bincount(unique // num_candidates, minlength=num_queries)
        starts = lengths.cumsum(0) - lengths
        return Relevance(starts, lengths, unique % num_candidates, gains, lengths)

    @staticmethod
    def from_dense(labels: Tensor) -> Relevance:
        """Column j is relevant to row i with gain ``labels[i, j]`` where that is > 0.

        Args:
            labels: ``[Q, N]`` gains (relevance) of each candidate to each query; > 0 = relevant.
        """
        rows, cols = (labels > 0).nonzero(as_tuple=True)
        lengths = torch.bincount(rows, minlength=len(labels))
        starts = lengths.cumsum(0) - lengths
        return Relevance(starts, lengths, cols, labels[rows, cols].to(torch.float64), lengths)

    def select(self, queries: Tensor) -> Relevance:
        """The runs of the given queries only (pair data).

        Args:
            queries: query indices to keep.
        """
        return Relevance(
            self.starts[queries], self.lengths[queries], self.cols, self.gains, self.counts[queries]
        )

    def chunk(
        self, lo: int, hi: int, excluded: Tensor | None, num_candidates: int
    ) -> RelevanceChunk:
        """The relevance of queries ``lo:hi``, whose own columns are ``excluded`` (or None).

        Args:
            lo: first query of the chunk.
            hi: one past its last query.
            excluded: ``[hi - lo]`` each query's own column, or None.
            num_candidates: number of candidates (the padding value).
        """
        lengths = self.lengths[lo:hi]
        width = max(int(lengths.max()) if len(lengths) else 0, 1)
        offsets = torch.arange(width, device=lengths.device)
        valid = offsets < lengths[:, None]
        if len(self.cols) == 0:
            cols = torch.full(valid.shape, num_candidates, device=valid.device)
            gains = valid.double()
        else:
            positions = (self.starts[lo:hi, None] + offsets).clamp_(max=len(self.cols) - 1)
            cols = torch.where(valid, self.cols[positions], num_candidates)
            if self.gains is None:
                gains = valid.to(torch.float64)
            else:
                gains = torch.where(valid, self.gains[positions], 0.0)
        if excluded is not None:
            gains = gains.masked_fill(cols == excluded[:, None], 0.0)
        query_labels = None if self.query_labels is None else self.query_labels[lo:hi]
        return RelevanceChunk(cols, gains, self.counts[lo:hi], excluded, self.labels, query_labels)


@dataclass(frozen=True)
class RelevanceChunk:
    """Relevance of a chunk of ``c`` queries.

    ``cols`` ``[c, W]``: each query's relevant candidates, ascending, padded with the number of
    candidates; ``gains`` ``[c, W]`` float64 (0 for padding and for the query's own column,
    ``excluded``); ``counts`` ``[c]``: relevant candidates per query (R).

    Args:
        cols: ``[c, W]`` relevant candidates, ascending, padded with the number of candidates.
        gains: ``[c, W]`` float64 gains (0 for padding).
        counts: ``[c]`` relevant candidates per query.
        excluded: ``[c]`` each query's own column, or None.
        labels: ``[N]`` candidate labels (group data), or None.
        query_labels: ``[c]`` query labels (group data), or None.
    """

    cols: Tensor
    gains: Tensor
    counts: Tensor
    excluded: Tensor | None = None
    labels: Tensor | None = None
    query_labels: Tensor | None = None

    def gains_at(self, rows: Tensor, ranked: Tensor) -> Tensor:
        """float64 gains of candidates ``ranked`` ``[r, K]`` for the chunk's queries ``rows``.

        Args:
            rows: ``[r]`` rows of the chunk.
            ranked: ``[r, K]`` candidate columns.
        """
        if self.labels is not None and self.query_labels is not None:
            same = self.labels[ranked] == self.query_labels[rows, None]
            if self.excluded is not None:
                same &= ranked != self.excluded[rows, None]
            return same.to(torch.float64)
        cols, gains = self.cols[rows], self.gains[rows]
        positions = torch.searchsorted(cols, ranked).clamp_(max=cols.shape[1] - 1)
        found = cols.gather(1, positions) == ranked
        return torch.where(found, gains.gather(1, positions), 0.0)
