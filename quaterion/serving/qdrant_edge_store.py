"""Embedded Qdrant Edge shard (PyPI `qdrant-edge-py`) in a directory: the default store."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

from quaterion.serving.vector_store import SearchResult, VectorStore
from quaterion_models.encoders.extras.optional_import import import_optional
from quaterion_models.utils.files import read_json, write_json_atomic

CONFIG_FILE = "edge_config.json"  # written by Qdrant Edge inside every shard directory
METADATA_FILE = "quaterion_store.json"  # what Quaterion records about the store, beside it
FULL_SCAN_KB = 10_000  # Qdrant's default: filtered searches over fewer vectors scan them all
_EDGE_DISTANCES = {
    "cosine": "Cosine",
    "dot_product": "Dot",
    "euclidean": "Euclid",
    "manhattan": "Manhattan",
}


def read_edge_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The metadata recorded in the store directory `path`, read without opening the shard
    (opening rewrites some of its files); empty when none was recorded.

    Args:
        path: the store directory.
    """
    source = Path(path) / METADATA_FILE
    return read_json(source, "vector store metadata") if source.is_file() else {}


class QdrantEdgeStore(VectorStore):
    """Vectors in an embedded Qdrant Edge shard with an HNSW index, stored under `path`.

    An existing shard at `path` is reopened (its width and distance must match); otherwise a
    new one is created, or, with `create=False`, a FileNotFoundError is raised and nothing is
    written. Points are searchable as soon as they are upserted; `optimize()` builds
    the HNSW index of segments larger than `indexing_threshold_kb` (Qdrant's default when
    None), below that size search is exact.

    Args:
        path: shard directory.
        dim: vector width.
        distance: one of "cosine", "dot_product", "euclidean", "manhattan".
        hnsw_m: HNSW graph degree.
        hnsw_ef_construct: HNSW build-time beam width.
        search_ef: query-time beam width (None: Qdrant's default).
        indexing_threshold_kb: segment size from which HNSW is built.
        create: create the shard when `path` holds none (False: a missing one is an error).
        recreate: delete the shard at `path` (and everything in its directory) first.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        dim: int,
        distance: str = "cosine",
        hnsw_m: int = 16,
        hnsw_ef_construct: int = 100,
        search_ef: int | None = None,
        indexing_threshold_kb: int | None = None,
        create: bool = True,
        recreate: bool = False,
    ):
        super().__init__(dim, distance)
        self._edge = import_optional("qdrant_edge", "qdrant", "QdrantEdgeStore")
        self.path = Path(path)
        self.search_ef = search_ef
        edge = self._edge
        config = edge.EdgeConfig(
            vectors=edge.EdgeVectorParams(
                size=dim, distance=getattr(edge.Distance, _EDGE_DISTANCES[self.distance])
            ),
            hnsw_config=edge.HnswIndexConfig(
                m=hnsw_m, ef_construct=hnsw_ef_construct, full_scan_threshold=FULL_SCAN_KB
            ),
            optimizers=edge.EdgeOptimizersConfig(indexing_threshold=indexing_threshold_kb),
        )
        if recreate and (self.path / CONFIG_FILE).is_file():
            shutil.rmtree(self.path)  # only ever a directory that holds a shard
        if (self.path / CONFIG_FILE).is_file():
            try:
                self._shard = edge.EdgeShard.load(str(self.path), config)
            except Exception as exc:  # Qdrant reports incompatibilities with its own types
                raise ValueError(
                    f"Cannot open the Qdrant Edge shard at {self.path} as {dim}-d "
                    f"{self.distance} vectors ({exc}); use another path or matching settings"
                ) from exc
        elif create:
            self._shard = edge.EdgeShard.create(str(self.path), config)
        else:
            raise FileNotFoundError(
                f"No vector store at {self.path}; create one with `quaterion index SERVABLE "
                f"DATA --store {self.path}`"
            )

    def upsert(
        self,
        ids: Sequence[int],
        vectors: Tensor | np.ndarray,
        payloads: Sequence[dict[str, Any]] | None = None,
    ) -> None:
        point_ids, rows, payload_list = self._points(ids, vectors, payloads)
        points = [
            self._edge.Point(point_id, row.tolist(), payload)
            for point_id, row, payload in zip(point_ids, rows, payload_list, strict=True)
        ]
        self._shard.update(self._edge.UpdateOperation.upsert_points(points))

    def optimize(self) -> None:
        """Build the HNSW index (and merge segments) now; blocks until done."""
        self._shard.optimize()

    def search(self, vectors: Tensor | np.ndarray, k: int = 10) -> SearchResult:
        self._check_k(k)
        edge = self._edge
        params = edge.SearchParams(hnsw_ef=self.search_ef) if self.search_ef else None
        requests = [
            edge.QueryRequest(
                limit=k, query=edge.Query.Nearest(row.tolist()), with_payload=True, params=params
            )
            for row in self._rows(vectors, "query vectors")
        ]
        responses = self._shard.query_batch(edge.QueryBatchRequest(requests)) if requests else []
        hits = [[(p.id, p.score, p.payload or {}) for p in points] for points in responses]
        return SearchResult.from_hits(hits, k)

    def points(self, limit: int | None = None) -> tuple[Tensor, Tensor, list[dict[str, Any]]]:
        def read_page(offset: Any, size: int) -> tuple[list[Any], Any]:
            request = self._edge.ScrollRequest(
                offset=offset, limit=size, with_payload=True, with_vector=True
            )
            found, next_offset = self._shard.scroll(request)
            return [(p.id, p.vector, p.payload) for p in found], next_offset

        return self._read_pages(read_page, limit)

    def retrieve(self, ids: Sequence[int]) -> tuple[Tensor, Tensor, list[dict[str, Any]]]:
        wanted = [int(i) for i in ids]
        found = self._shard.retrieve(point_ids=wanted, with_payload=True, with_vector=True)
        return self._records(wanted, [(p.id, p.vector, p.payload) for p in found])

    def count(self) -> int:
        return int(self._shard.count(self._edge.CountRequest(exact=True)))

    def metadata(self) -> dict[str, Any]:
        return read_edge_metadata(self.path)

    def write_metadata(self, metadata: dict[str, Any]) -> None:
        write_json_atomic(self.path / METADATA_FILE, metadata)

    def close(self) -> None:
        if self._shard is not None:
            self._shard.flush()
            self._shard.close()
            self._shard = None
