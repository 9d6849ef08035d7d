"""A Qdrant collection reached through `qdrant-client` (a server, or the client's local mode)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from torch import Tensor

from quaterion.serving.vector_store import SearchResult, VectorStore
from quaterion_models.encoders.extras.optional_import import import_optional

METADATA_KEY = "quaterion"  # the collection metadata entry holding what Quaterion records
_CLIENT_DISTANCES = {
    "cosine": "COSINE",
    "dot_product": "DOT",
    "euclidean": "EUCLID",
    "manhattan": "MANHATTAN",
}


class QdrantClientStore(VectorStore):
    """Vectors in the Qdrant collection `collection`, created when missing.

    Args:
        collection: collection name; an existing one must have the same width and distance.
        dim: vector width.
        distance: one of "cosine", "dot_product", "euclidean", "manhattan".
        url: Qdrant server, e.g. "http://localhost:6333".
        location: ":memory:" for the client's in-memory local mode.
        path: a directory for the client's on-disk local mode.
            (Local modes search by brute force inside the Python process: tests, small data.)
        api_key: server API key.
        search_ef: query-time HNSW beam width (None: the server's default).
        upload_batch_size: points sent per upsert request.
        create: create the collection when it is missing (False: a missing one is an error).
        recreate: delete the collection first (its points and metadata), then create it.
    """

    def __init__(
        self,
        collection: str,
        dim: int,
        distance: str = "cosine",
        url: str | None = None,
        location: str | None = None,
        path: str | os.PathLike | None = None,
        api_key: str | None = None,
        search_ef: int | None = None,
        upload_batch_size: int = 256,
        create: bool = True,
        recreate: bool = False,
    ):
        super().__init__(dim, distance)
        if sum(option is not None for option in (url, location, path)) != 1:
            raise ValueError(
                "Pass exactly one of url= (a Qdrant server, e.g. 'http://localhost:6333'), "
                "location=':memory:' or path= (a directory) for qdrant-client's local mode"
            )
        client_module = import_optional("qdrant_client", "qdrant", "QdrantClientStore")
        self._models = client_module.models
        self._client = client_module.QdrantClient(
            url=url, location=location, path=None if path is None else str(path), api_key=api_key
        )
        self.collection = collection
        self.search_ef = search_ef
        self.upload_batch_size = upload_batch_size
        wanted = getattr(self._models.Distance, _CLIENT_DISTANCES[self.distance])
        if recreate and self._client.collection_exists(collection):
            self._client.delete_collection(collection)
        if self._client.collection_exists(collection):
            vectors = self._client.get_collection(collection).config.params.vectors
            if (
                getattr(vectors, "size", None) != dim
                or getattr(vectors, "distance", None) != wanted
            ):
                self._client.close()
                raise ValueError(
                    f"Collection {collection!r} holds {vectors}, not {dim}-d {self.distance} "
                    "vectors; use another collection name or matching settings"
                )
        elif not create:
            self._client.close()
            raise FileNotFoundError(
                f"No collection {collection!r} at {url or location or path}; create it with "
                "`quaterion index`"
            )
        else:
            self._client.create_collection(
                collection, vectors_config=self._models.VectorParams(size=dim, distance=wanted)
            )

    def upsert(
        self,
        ids: Sequence[int],
        vectors: Tensor | np.ndarray,
        payloads: Sequence[dict[str, Any]] | None = None,
    ) -> None:
        point_ids, rows, payload_list = self._points(ids, vectors, payloads)
        step = self.upload_batch_size
        for start in range(0, len(point_ids), step):
            batch = self._models.Batch(
                ids=point_ids[start : start + step],
                vectors=rows[start : start + step].tolist(),
                payloads=payload_list[start : start + step],
            )
            self._client.upsert(self.collection, points=batch, wait=True)

    def search(self, vectors: Tensor | np.ndarray, k: int = 10) -> SearchResult:
        self._check_k(k)
        params = self._models.SearchParams(hnsw_ef=self.search_ef) if self.search_ef else None
        requests = [
            self._models.QueryRequest(query=row.tolist(), limit=k, with_payload=True, params=params)
            for row in self._rows(vectors, "query vectors")
        ]
        responses = (
            self._client.query_batch_points(self.collection, requests=requests) if requests else []
        )
        hits = [[(p.id, p.score, p.payload or {}) for p in r.points] for r in responses]
        return SearchResult.from_hits(hits, k)

    def points(self, limit: int | None = None) -> tuple[Tensor, Tensor, list[dict[str, Any]]]:
        def read_page(offset: Any, size: int) -> tuple[list[Any], Any]:
            found, next_offset = self._client.scroll(
                self.collection, limit=size, offset=offset, with_payload=True, with_vectors=True
            )
            return [(p.id, p.vector, p.payload) for p in found], next_offset

        return self._read_pages(read_page, limit)

    def retrieve(self, ids: Sequence[int]) -> tuple[Tensor, Tensor, list[dict[str, Any]]]:
        wanted = [int(i) for i in ids]
        found = self._client.retrieve(self.collection, wanted, with_payload=True, with_vectors=True)
        return self._records(wanted, [(p.id, p.vector, p.payload) for p in found])

    def count(self) -> int:
        return int(self._client.count(self.collection, exact=True).count)

    def metadata(self) -> dict[str, Any]:
        recorded = self._client.get_collection(self.collection).config.metadata or {}
        return dict(recorded.get(METADATA_KEY) or {})

    def write_metadata(self, metadata: dict[str, Any]) -> None:
        self._client.update_collection(self.collection, metadata={METADATA_KEY: metadata})

    def close(self) -> None:
        self._client.close()
