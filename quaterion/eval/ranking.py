"""Exact, chunk-independent ranking of candidates for a chunk of queries.

Fast keys come from one matrix product per chunk. BLAS may round a product differently depending
on the chunk's shape (and even on a candidate's column), so two candidates whose fast keys are
within the worst-case rounding bound of each other are re-ranked by an *exact* key: the same
formula evaluated pair by pair, in a fixed order, so its value does not depend on chunking. The
order is (exact key, candidate index): the same for any chunk size, and a tie between equal
candidates always goes to the smaller index.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from quaterion.distances import Distance

# Elements of the temporaries used for exact keys (16 MiB in float32).
_EXACT_BATCH_ELEMENTS = 2**22
# Keys read at once when counting the candidates ranked before one (16 MiB in float32).
_RANK_BATCH_ELEMENTS = 2**22

# (rows, cols) -> one value per (row, column) pair, e.g. exact keys or gains
Lookup = Callable[[Tensor, Tensor], Tensor]


class KeyBlock:
    """Ranking keys of ``c`` queries (rows) against ``N`` candidates (columns); smaller = closer.

    Args:
        keys: ``[c, N]`` fast keys; ``keys[i, j]`` is within ``tolerance[i]`` of the exact key.
        tolerance: ``[c]`` float64 bound of ``|fast key - exact key|`` in each row.
        exact: ``exact(rows, cols)`` -> exact keys of the pairs ``(rows[p], cols[p])``.
        excluded: ``[c]`` column each row must never retrieve (its own), or None. Its fast key
            must already be ``+inf``.
    """

    def __init__(
        self, keys: Tensor, tolerance: Tensor, exact: Lookup, excluded: Tensor | None = None
    ):
        self.keys = keys
        self.tolerance = tolerance
        self._exact = exact
        self.excluded = excluded

    @staticmethod
    def given(keys: Tensor) -> KeyBlock:
        """A block whose keys are exact already (e.g. a user's distance matrix).

        Args:
            keys: ``[c, N]`` exact keys.
        """
        return KeyBlock(
            keys,
            torch.zeros(len(keys), dtype=torch.float64, device=keys.device),
            lambda rows, cols: keys[rows, cols],
        )

    def exact(self, rows: Tensor, cols: Tensor) -> Tensor:
        """Exact keys of the pairs ``(rows[p], cols[p])``; ``+inf`` for excluded columns.

        Args:
            rows: ``[p]`` rows of the block.
            cols: ``[p]`` candidate columns.
        """
        values = self._exact(rows, cols)
        if self.excluded is not None:
            values = values.masked_fill(cols == self.excluded[rows], torch.inf)
        return values

    def topk(self, k: int) -> Tensor:
        """``[c, k]`` columns of the k best candidates of each row, best first.

        Args:
            k: candidates per row.
        """
        return self._topk(self._all_rows(), k, self._first_take(k), None)[0]

    def ranked_gains(self, k: int, gains: Lookup) -> Tensor:
        """``[c, k]`` gains of the k best candidates, best first (``gains(rows, cols)`` ->
        ``[r, m]`` gains of candidates ``cols`` of rows ``rows``).

        Neighbours of equal gain may stay in fast-key order, which saves exact keys; the
        sequence of gains, all that a metric reads, is still exactly the exact ranking's.

        Args:
            k: candidates per row.
            gains: ``gains(rows, cols)`` -> gains of candidates ``cols`` of rows ``rows``.
        """
        return self._topk(self._all_rows(), k, self._first_take(k), gains)[1]

    def _all_rows(self) -> Tensor:
        return torch.arange(len(self.keys), device=self.keys.device)

    def _first_take(self, k: int) -> int:
        # a few candidates past the k-th, to see whether a rounding run crosses the cut
        return min(self.keys.shape[1], k + max(8, k // 16))

    def _topk(
        self, rows: Tensor, k: int, take: int, gains: Lookup | None
    ) -> tuple[Tensor, Tensor | None]:
        """Exact top k of ``rows``, from their fast top ``take`` (made longer when too short)."""
        keys = self.keys if len(rows) == len(self.keys) else self.keys[rows]
        fast, cols = torch.topk(keys, take, dim=1, largest=False, sorted=True)
        with serial_if_cpu(keys):
            fast = fast.to(torch.float64)
            listed = None if gains is None else gains(rows, cols)
            bound = 2 * self.tolerance[rows]
            unsure, at_row, at = _uncertain(fast, bound, k, listed)
            pair_rows, pair_cols = rows[unsure][at_row], cols[unsure][at_row, at]
        exact = self.exact(pair_rows, pair_cols).double()  # on every thread: may be large
        with serial_if_cpu(keys):
            order = torch.arange(k, device=cols.device).expand(len(rows), k).clone()
            if len(unsure):
                order[unsure] = _key_column_order(
                    fast[unsure].index_put((at_row, at), exact), cols[unsure]
                )[:, :k]
            best = cols.gather(1, order)
            best_gains = None if listed is None else listed.gather(1, order)
            # Unlisted candidates are only known to be worse than the last listed one within the
            # bound: the list is long enough once that cannot reach the k-th candidate.
            short = (fast[:, -1] - fast[:, k - 1] <= bound).nonzero().squeeze(1)
        if take < self.keys.shape[1] and len(short):
            deeper = self._topk(rows[short], k, min(self.keys.shape[1], 4 * take), gains)
            best[short] = deeper[0]
            if best_gains is not None:
                best_gains[short] = deeper[1]
        return best, best_gains

    def rank_of(self, rows: Tensor, key: Tensor, col: Tensor) -> Tensor:
        """0-based rank of candidate ``col[r]`` (exact key ``key[r]``) in the ranking of row
        ``rows[r]``: the number of candidates ordered before it. Reads whole rows, a few at a
        time (about 2**22 keys, so the temporaries stay small and in cache).

        Args:
            rows: ``[r]`` rows of the block.
            key: ``[r]`` exact key of each candidate.
            col: ``[r]`` the candidate of each row.
        """
        step = max(1, _RANK_BATCH_ELEMENTS // max(1, self.keys.shape[1]))
        ranks = [torch.zeros(0, dtype=torch.long, device=self.keys.device)]
        for start in range(0, len(rows), step):
            batch = slice(start, start + step)
            ranks.append(self._rank_batch(rows[batch], key[batch], col[batch]))
        return torch.cat(ranks)

    def _rank_batch(self, rows: Tensor, key: Tensor, col: Tensor) -> Tensor:
        first = int(rows[0]) if len(rows) else 0
        span = torch.arange(first, first + len(rows), device=rows.device)
        if torch.equal(rows, span):  # consecutive rows (the usual case): a view, no copy
            keys = self.keys[first : first + len(rows)]
        else:
            keys = self.keys.index_select(0, rows)
        tolerance = self.tolerance[rows]
        low = _round(key - tolerance, keys.dtype, down=True)[:, None]
        high = _round(key + tolerance, keys.dtype, down=False)[:, None]
        before, near_row, near_col = below_and_near(keys, low, high, _numpy_counts(keys))
        near_key = self.exact(rows[near_row], near_col)
        earlier = (near_key < key[near_row]) | (
            (near_key == key[near_row]) & (near_col < col[near_row])
        )
        return before + torch.bincount(near_row[earlier], minlength=len(rows))

    def best_of(self, rows: Tensor, cols: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
        """``(exact key, column)`` of the best valid candidate of ``cols[r]`` (``[r, W]``,
        ascending) for each row ``rows[r]``; every row needs at least one valid candidate.

        Args:
            rows: ``[r]`` rows of the block.
            cols: ``[r, W]`` candidate columns, ascending.
            valid: ``[r, W]`` which of them count.
        """
        with serial_if_cpu(cols):
            return self._best_of(rows, cols, valid)

    def _best_of(self, rows: Tensor, cols: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
        fast = self.keys[rows[:, None], cols.clamp(max=self.keys.shape[1] - 1)]
        fast = fast.to(torch.float64).masked_fill(~valid, torch.inf)
        contenders = valid & (
            fast <= fast.min(dim=1, keepdim=True).values + 2 * self.tolerance[rows, None]
        )
        exact = torch.full_like(fast, torch.inf)
        at_row, at = contenders.nonzero(as_tuple=True)
        exact[at_row, at] = self.exact(rows[at_row], cols[at_row, at]).double()
        key, position = exact.min(dim=1)  # first of equal keys = smallest column
        return key, cols.gather(1, position[:, None]).squeeze(1)


class CandidateIndex:
    """Candidates prepared once for a distance; ``block(queries)`` ranks a chunk of queries.

    Keys come from the distance's :class:`~quaterion.distances.ranking_space.RankingSpace`
    (``Distance.get_by_name(name).ranking_space``), the one place that knows its formula.

    Args:
        candidates: ``[N, D]`` vectors ranked for every query.
        distance: a ``Distance`` or its name.
    """

    def __init__(self, candidates: Tensor, distance: Distance | str):
        self.space = Distance.get_by_name(distance).ranking_space(candidates)
        # |fast - exact| <= 2 x the worst-case rounding of a D-term float sum, (D + 2) unit
        # roundoffs each (eps = 2 unit roundoffs), times the space's rounding scale.
        self._rounding = (candidates.shape[1] + 2) * torch.finfo(candidates.dtype).eps

    def block(self, queries: Tensor, excluded: Tensor | None = None) -> KeyBlock:
        """Keys of ``[c, D]`` queries; ``excluded[i]`` (if given) is never retrieved by row i.

        Args:
            queries: ``[c, D]`` queries.
            excluded: ``[c]`` a column each row must never retrieve (its own), or None.
        """
        queries = self.space.prepare(queries)
        keys = self.space.keys(queries)
        if excluded is not None:
            keys[torch.arange(len(keys), device=keys.device), excluded] = torch.inf
        tolerance = self._rounding * self.space.rounding_scale(self.space.norms(queries))
        return KeyBlock(
            keys, tolerance, lambda rows, cols: self._exact(queries, rows, cols), excluded
        )

    def _exact(self, queries: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
        """Keys of pairs, each summed on its own so chunking cannot change it."""
        step = max(1, _EXACT_BATCH_ELEMENTS // max(1, queries.shape[1]))
        parts = [torch.empty(0, dtype=queries.dtype, device=queries.device)]
        for start in range(0, len(rows), step):
            batch = slice(start, start + step)
            parts.append(self.space.pair_keys(queries[rows[batch]], cols[batch]))
        return torch.cat(parts)


@contextmanager
def serial_if_cpu(tensor: Tensor) -> Iterator[None]:
    """Run the bookkeeping on small CPU tensors on one thread.

    Spreading a tensor of a few hundred thousand elements over threads costs more than it saves,
    and up to 20 times more when other processes share the cores. Big work (matrix products,
    top-k over whole rows) runs outside this block, on every thread.

    Args:
        tensor: decides the device: nothing changes off the CPU.
    """
    threads = torch.get_num_threads()
    if tensor.device.type != "cpu" or threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def below_and_near(
    keys: Tensor, low: Tensor, high: Tensor, use_numpy: bool
) -> tuple[Tensor, Tensor, Tensor]:
    """``(before, near_row, near_col)``: the number of keys below ``low`` in each row of
    ``keys`` ``[r, N]`` (``[r]`` int64), and where ``low <= key <= high`` (``low`` and ``high``
    ``[r, 1]``, in the keys' dtype).

    Both ways give the same result; on a CPU numpy compares and counts several times faster
    than torch (``use_numpy``, for float32 and float64 keys).

    Args:
        keys: ``[r, N]`` fast keys.
        low: ``[r, 1]`` lower bound of each row.
        high: ``[r, 1]`` upper bound of each row.
        use_numpy: compare with numpy (CPU tensors of float32 or float64 only).
    """
    if use_numpy:
        values = keys.detach().numpy()
        below = values < low.detach().numpy()
        near = values <= high.detach().numpy()
        near ^= below  # below implies <= high
        before = torch.from_numpy(below.view(np.uint8).sum(axis=1, dtype=np.int64))
        near_row, near_col = torch.from_numpy(near).nonzero(as_tuple=True)
        return before, near_row, near_col
    below = keys < low
    before = below.view(torch.uint8).sum(dim=1, dtype=torch.int32).long()
    near_row, near_col = (keys <= high).logical_xor_(below).nonzero(as_tuple=True)
    return before, near_row, near_col


def _numpy_counts(keys: Tensor) -> bool:
    return keys.device.type == "cpu" and keys.dtype in (torch.float32, torch.float64)


def _uncertain(
    fast: Tensor, bound: Tensor, k: int, gains: Tensor | None
) -> tuple[Tensor, Tensor, Tensor]:
    """Places of sorted fast-key lists ``[r, m]`` whose order rounding may have changed:
    ``(rows having any, then row within those and place of each)``.

    Neighbours closer than ``bound`` form runs that fast keys may misorder; any other candidate
    is farther than the rounding bound from each of them. Only runs reaching the first k places
    count, and, given ``gains``, only runs of unequal gains (others cannot change a metric).
    """
    close = fast.diff(dim=1) <= bound[:, None]
    run = torch.cat([torch.ones_like(close[:, :1]), ~close], dim=1).cumsum(dim=1)
    uncertain = (F.pad(close, (1, 0)) | F.pad(close, (0, 1))) & (run <= run[:, k - 1 : k])
    if gains is not None:
        uncertain &= _mixed_runs(run, gains)
    unsure = uncertain.any(dim=1).nonzero().squeeze(1)
    at_row, at = uncertain[unsure].nonzero(as_tuple=True)
    return unsure, at_row, at


def _key_column_order(keys: Tensor, cols: Tensor) -> Tensor:
    """Permutation sorting each row by (key, column)."""
    order = keys.sort(dim=1, stable=True).indices
    sorted_keys = keys.gather(1, order)
    tied = (sorted_keys.diff(dim=1) == 0).any(dim=1).nonzero().squeeze(1)
    if len(tied):  # equal keys: sort by column first, then stably by key
        by_col = cols[tied].argsort(dim=1)
        order[tied] = by_col.gather(
            1, keys[tied].gather(1, by_col).sort(dim=1, stable=True).indices
        )
    return order


def _mixed_runs(run: Tensor, gains: Tensor) -> Tensor:
    """``[r, m]`` True where the run (ids ``run``, ascending per row) holds unequal gains."""
    ids = run - 1 + torch.arange(len(run), device=run.device)[:, None] * run.shape[1]
    ids, gains = ids.flatten(), gains.flatten().to(torch.float64)
    low = torch.full_like(gains, torch.inf).scatter_reduce(0, ids, gains, "amin")
    high = torch.full_like(gains, -torch.inf).scatter_reduce(0, ids, gains, "amax")
    return (low != high)[ids].view(run.shape)


def _round(values: Tensor, dtype: torch.dtype, down: bool) -> Tensor:
    """float64 ``values`` in ``dtype``, rounded down (or up) so no bound is lost."""
    rounded = values.to(dtype)
    direction = torch.full_like(rounded, -torch.inf if down else torch.inf)
    wrong_side = rounded.to(torch.float64) > values if down else rounded.to(torch.float64) < values
    return torch.where(wrong_side, torch.nextafter(rounded, direction), rounded)
