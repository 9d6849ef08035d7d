"""The one interface Quaterion uses to serve embeddings from a vector database."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

# Quaterion's distance names (the values of `quaterion.distances.Distance`).
DISTANCES = ("cosine", "dot_product", "euclidean", "manhattan")


@dataclass
class SearchResult:
    """Nearest neighbours of Q query vectors, best first.

    `ids` int64 `[Q, k]` and `scores` float32 `[Q, k]` are padded with -1 / NaN where fewer than
    k points exist; `payloads[q]` lists the payloads of query q's hits. Scores are the
    backend's: similarities (higher is closer) for cosine / dot product, distances (lower is
    closer) for euclidean / manhattan.

    Args:
        ids: `[Q, k]` int64 point ids, -1 where there are fewer than k points.
        scores: `[Q, k]` float32 scores, NaN as padding.
        payloads: per query, the payloads of its hits.
    """

    ids: Tensor
    scores: Tensor
    payloads: list[list[dict[str, Any]]]

    @classmethod
    def from_hits(cls, hits: list[list[tuple[int, float, dict[str, Any]]]], k: int) -> SearchResult:
        """Build from per-query `(id, score, payload)` lists.

        Args:
            hits: per query, `(id, score, payload)` tuples, best first.
            k: the width of the result.
        """
        ids = torch.full((len(hits), k), -1, dtype=torch.int64)
        scores = torch.full((len(hits), k), float("nan"), dtype=torch.float32)
        for row, query_hits in enumerate(hits):
            if query_hits:
                ids[row, : len(query_hits)] = torch.tensor([hit[0] for hit in query_hits])
                scores[row, : len(query_hits)] = torch.tensor([hit[1] for hit in query_hits])
        return cls(ids=ids, scores=scores, payloads=[[hit[2] for hit in q] for q in hits])


class VectorStore(ABC):
    """A collection of `dim`-wide vectors with integer ids and JSON payloads.

    Backends: `QdrantEdgeStore` (embedded, persisted in a directory; the default) and
    `QdrantClientStore` (a Qdrant server, or the client's local mode).

    Args:
        dim: vector width.
        distance: one of "cosine", "dot_product", "euclidean", "manhattan".
    """

    def __init__(self, dim: int, distance: str = "cosine"):
        distance = str(getattr(distance, "value", distance))
        if distance not in DISTANCES:
            raise ValueError(f"Unknown distance {distance!r}; choose one of {list(DISTANCES)}")
        if dim < 1:
            raise ValueError(f"dim must be a positive vector width, got {dim}")
        self.dim = dim
        self.distance = distance

    @abstractmethod
    def upsert(
        self,
        ids: Sequence[int],
        vectors: Tensor | np.ndarray,
        payloads: Sequence[dict[str, Any]] | None = None,
    ) -> None:
        """Insert or replace points: ids (non-negative ints), vectors `[N, dim]`, payloads.

        Args:
            ids: non-negative point ids.
            vectors: `[N, dim]` vectors (tensor or numpy).
            payloads: one JSON-serialisable dict per point, or None.
        """

    @abstractmethod
    def search(self, vectors: Tensor | np.ndarray, k: int = 10) -> SearchResult:
        """The `k` nearest points of each query vector `[Q, dim]`.

        Args:
            vectors: `[Q, dim]` query vectors (tensor or numpy).
            k: hits per query.
        """

    @abstractmethod
    def points(self, limit: int | None = None) -> tuple[Tensor, Tensor, list[dict[str, Any]]]:
        """Up to `limit` stored points (all when None): ids `[N]`, vectors `[N, dim]`, payloads.

        Vectors are as the backend stores them (unit length for cosine).

        Args:
            limit: most points returned; None: all.
        """

    def retrieve(self, ids: Sequence[int]) -> tuple[Tensor, Tensor, list[dict[str, Any]]]:
        """The stored points among `ids`, in the order given (missing ids left out): ids
        `[M]`, vectors `[M, dim]` as stored, payloads.

        Args:
            ids: point ids.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot retrieve points by id")

    def _records(
        self, ids: Sequence[int], found: list[tuple[int, Any, dict[str, Any] | None]]
    ) -> tuple[Tensor, Tensor, list[dict[str, Any]]]:
        """`retrieve`'s answer from a backend's `(id, vector, payload)` records."""
        by_id = {int(record[0]): record for record in found}
        records = [by_id[int(i)] for i in ids if int(i) in by_id]
        vectors = torch.tensor([list(record[1]) for record in records], dtype=torch.float32)
        return (
            torch.tensor([int(record[0]) for record in records], dtype=torch.int64),
            vectors.reshape(len(records), self.dim),
            [record[2] or {} for record in records],
        )

    @abstractmethod
    def count(self) -> int:
        """Number of stored points."""

    @abstractmethod
    def metadata(self) -> dict[str, Any]:
        """What was recorded about the store with `write_metadata` (empty when nothing was).

        Returns:
            the recorded dict.
        """

    @abstractmethod
    def write_metadata(self, metadata: dict[str, Any]) -> None:
        """Replace the recorded metadata with `metadata`.

        Args:
            metadata: a JSON-serialisable dict.
        """

    @abstractmethod
    def close(self) -> None:
        """Release the backend (files, connections); the store is unusable afterwards."""

    def __enter__(self) -> VectorStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _rows(self, vectors: Tensor | np.ndarray, what: str) -> np.ndarray:
        """`vectors` as a float32 `[N, dim]` array, or a ValueError naming the bad shape."""
        if isinstance(vectors, Tensor):
            vectors = vectors.detach().cpu().numpy()
        array = np.asarray(vectors, dtype=np.float32)
        if array.ndim != 2 or array.shape[1] != self.dim:
            raise ValueError(f"{what} must be [N, {self.dim}], got shape {array.shape}")
        if not np.isfinite(array).all():
            raise ValueError(f"{what} contain NaN or infinite values")
        return array

    def _points(
        self,
        ids: Sequence[int],
        vectors: Tensor | np.ndarray,
        payloads: Sequence[dict[str, Any]] | None,
    ) -> tuple[list[int], np.ndarray, list[dict[str, Any]]]:
        """Validated (ids, vectors, payloads) of an upsert."""
        rows = self._rows(vectors, "vectors")
        point_ids = [int(i) for i in ids]
        payload_list = [{} for _ in point_ids] if payloads is None else list(payloads)
        if not len(point_ids) == len(rows) == len(payload_list):
            raise ValueError(
                f"upsert needs one id and one payload per vector: got {len(point_ids)} ids, "
                f"{len(rows)} vectors, {len(payload_list)} payloads"
            )
        if any(i < 0 for i in point_ids):
            raise ValueError("Point ids must be non-negative integers")
        return point_ids, rows, payload_list

    def _read_pages(
        self,
        read_page: Callable[[Any, int], tuple[list[tuple[int, Any, dict[str, Any]]], Any]],
        limit: int | None,
        page_size: int = 1024,
    ) -> tuple[Tensor, Tensor, list[dict[str, Any]]]:
        """`points()` from a backend's scroll: `read_page(offset, n)` gives up to n
        `(id, vector, payload)` records and the next offset (None after the last page)."""
        records: list[tuple[int, Any, dict[str, Any]]] = []
        offset = None
        while limit is None or len(records) < limit:
            found, offset = read_page(
                offset, page_size if limit is None else min(page_size, limit - len(records))
            )
            records.extend(found)
            if offset is None:
                break
        ids = torch.tensor([record[0] for record in records], dtype=torch.int64)
        vectors = torch.tensor([list(record[1]) for record in records], dtype=torch.float32)
        return ids, vectors.reshape(len(records), self.dim), [r[2] or {} for r in records]

    @staticmethod
    def _check_k(k: int) -> None:
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
