"""Order-preserving ranking keys of a distance, for exact nearest-neighbour retrieval.

A :class:`RankingSpace` is built once over the candidates of a retrieval and gives, for a chunk
of queries, *fast keys* (one matrix product) and, for single pairs, *exact keys* (the same
formula summed pair by pair, so chunking cannot change it). Smaller key = closer. Keys only
preserve the distance's order (no ``1 - x`` or square root). ``rounding_scale`` bounds
``|fast - exact|`` in units of the sum's rounding, which the ranking engine
(:mod:`quaterion.eval.ranking`) uses to settle near-ties exactly.

Every distance in :class:`quaterion.distances.Distance` returns its space from
``ranking_space(candidates)``: adding a distance means adding its class and, if it is not an
inner product of prepared vectors, a space here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


class RankingSpace:
    """Inner-product keys ``-<q, c>`` (the dot-product distance); subclasses change the
    preparation of vectors or the key formula.

    Args:
        candidates: ``[N, D]`` vectors ranked for every query.
    """

    # order of the vector norm that bounds the keys' magnitude (see rounding_scale)
    norm_order = 2

    def __init__(self, candidates: Tensor):
        self.candidates = self.prepare(candidates)
        self.largest_norm = self.norms(self.candidates).max()

    def prepare(self, vectors: Tensor) -> Tensor:
        """Vectors (queries or candidates) in the space the keys are computed in.

        Args:
            vectors: ``[n, D]`` queries or candidates.
        """
        return vectors

    def keys(self, queries: Tensor) -> Tensor:
        """``[c, N]`` fast keys of prepared ``[c, D]`` queries against every candidate.

        Args:
            queries: ``[c, D]`` prepared queries.
        """
        return queries.neg() @ self.candidates.T

    def pair_keys(self, queries: Tensor, cols: Tensor) -> Tensor:
        """``[p]`` exact keys of prepared queries ``[p, D]`` against candidates ``cols`` ``[p]``.

        Args:
            queries: ``[p, D]`` prepared queries.
            cols: ``[p]`` candidate index of each query.
        """
        return -(queries * self.candidates[cols]).sum(dim=1)

    def rounding_scale(self, query_norms: Tensor) -> Tensor:
        """``[c]`` magnitude of the terms summed into a key, from the queries' ``norms``.

        Args:
            query_norms: ``[c]`` results of ``norms`` for the queries.
        """
        return self.largest_norm * query_norms

    def norms(self, vectors: Tensor) -> Tensor:
        """float64 row norms (order ``norm_order``), enlarged by 0.1% to cover their rounding.

        Args:
            vectors: ``[n, D]`` prepared vectors.
        """
        norms = torch.linalg.vector_norm(vectors, ord=self.norm_order, dim=1)
        return norms.to(torch.float64) * 1.001


class CosineSpace(RankingSpace):
    """``-<q/|q|, c/|c|>``: the dot product of unit vectors."""

    def prepare(self, vectors: Tensor) -> Tensor:
        return F.normalize(vectors, p=2, dim=1)


class EuclideanSpace(RankingSpace):
    """``|c - m|^2 - 2 <q - m, c - m>`` (``m``: the candidates' mean, which limits
    cancellation): the squared L2 distance less ``|q - m|^2``, constant per query.

    Args:
        candidates: ``[N, D]`` vectors ranked for every query.
    """

    def __init__(self, candidates: Tensor):
        self.center = candidates.mean(dim=0)
        super().__init__(candidates)
        self.squared_norms = self.candidates.pow(2).sum(dim=1)

    def prepare(self, vectors: Tensor) -> Tensor:
        return vectors - self.center

    def keys(self, queries: Tensor) -> Tensor:
        return torch.addmm(self.squared_norms, queries, self.candidates.T, alpha=-2)

    def pair_keys(self, queries: Tensor, cols: Tensor) -> Tensor:
        return self.squared_norms[cols] - 2 * (queries * self.candidates[cols]).sum(dim=1)

    def rounding_scale(self, query_norms: Tensor) -> Tensor:
        return self.largest_norm * (self.largest_norm + 2 * query_norms)


class ManhattanSpace(RankingSpace):
    """The L1 distance itself."""

    norm_order = 1

    def keys(self, queries: Tensor) -> Tensor:
        return torch.cdist(queries, self.candidates, p=1)

    def pair_keys(self, queries: Tensor, cols: Tensor) -> Tensor:
        return (queries - self.candidates[cols]).abs().sum(dim=1)

    def rounding_scale(self, query_norms: Tensor) -> Tensor:
        return self.largest_norm + query_norms
