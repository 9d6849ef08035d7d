"""What `quaterion serve` serves, apart from HTTP: a servable, its store and what the page shows.

Every method here is synchronous and runs on the service's one model thread (see `app.py`), so
the model and the stores are never used from two threads at once.
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from quaterion.serving.baseline import encode_with_baseline, frozen_baseline
from quaterion.serving.locations import (
    DEFAULT_COLLECTION,
    baseline_location,
    check_store_directory,
    is_url,
    open_store,
)
from quaterion.serving.provenance import check_store_servable
from quaterion.serving.vector_store import VectorStore
from quaterion.utils.pca import pca_2d
from quaterion_models import SimilarityModel

MAX_CONFUSIONS = 100  # rows of the page's confusion table


def group_of(payload: dict[str, Any]) -> Any:
    """The group name a stored point carries (written by `quaterion index` and the demo).

    Args:
        payload: a stored point's payload.
    """
    return payload.get("group", payload.get("label"))


def shown(payload: dict[str, Any]) -> dict[str, Any]:
    """How the page shows a stored point: its group and its object (text, or image URL).

    Args:
        payload: a stored point's payload.
    """
    if "image" in payload:
        return {"group": group_of(payload), "object": payload["image"], "kind": "image"}
    return {"group": group_of(payload), "object": payload.get("text"), "kind": "text"}


def _ids(point_id: Any) -> dict[str, Any]:
    """A point's `id`, and `ref`, the same id as a string: ids derived from content take 63
    bits, more than a JavaScript number holds exactly, so the page searches by `ref`."""
    return {"id": int(point_id), "ref": str(int(point_id))}


def nearest_other(vectors: Tensor, chunk_size: int = 1024) -> tuple[Tensor, Tensor]:
    """For each unit row of `vectors` `[N, D]`: (index of its most similar other row `[N]`,
    that cosine similarity `[N]`). Needs N >= 2.

    Args:
        vectors: `[N, D]` unit vectors.
        chunk_size: rows compared at once.
    """
    rows, scores = [], []
    for start in range(0, len(vectors), chunk_size):
        block = vectors[start : start + chunk_size] @ vectors.T  # [c, N]
        block[torch.arange(len(block)), torch.arange(start, start + len(block))] = -torch.inf
        best = block.max(dim=1)
        rows.append(best.indices)
        scores.append(best.values)
    return torch.cat(rows), torch.cat(scores)


@dataclass
class Inspection:
    """The page's map and confusions of the stored points.

    Args:
        points: x, y (PCA of the servable's vectors), group, object and kind of each point.
        confusions: held-out objects whose nearest neighbour is in another group.
        confused: how many points that is, for the servable's vectors.
        baseline_confused: the same count for the frozen encoder's vectors, or None.
        total: number of points inspected.
        grouped: whether the points carry groups; a store of pairs (objects with a pair
            score, no group) has no confusions to show (`confused` is 0).
    """

    points: list[dict[str, Any]]  # x, y (PCA of the servable's vectors), group, object, kind
    confusions: list[dict[str, Any]]  # held-out objects whose nearest neighbour is elsewhere
    confused: int  # how many points that is, for the servable's vectors
    baseline_confused: int | None  # the same count for the frozen encoder's vectors
    total: int
    grouped: bool = True  # False for a store of pairs: no groups, no confusions

    def as_json(self) -> dict[str, Any]:
        """The inspection as a JSON-serialisable dict."""
        return self.__dict__.copy()


def inspect_points(
    ids: Tensor,
    vectors: Tensor,
    payloads: list[dict[str, Any]],
    baseline: tuple[Tensor, Tensor, list[dict[str, Any]]] | None = None,
) -> Inspection:
    """Map (2-D PCA, by group) and confusions (points whose nearest other point is in another
    group, most similar wrong neighbour first) of stored points `ids` `[N]`, `vectors` `[N, D]`.
    Points without groups (a store of pairs) get the map alone.

    Args:
        ids: `[N]` point ids.
        vectors: `[N, D]` their vectors.
        payloads: their payloads.
        baseline: `(ids, vectors, payloads)` of the frozen encoder's store, or None.
    """
    groups = [group_of(payload) for payload in payloads]
    coords = pca_2d(vectors) if len(vectors) else torch.zeros(0, 2)
    points = [
        {**_ids(point_id), "x": float(x), "y": float(y), **shown(payload)}
        for point_id, (x, y), payload in zip(ids.tolist(), coords.tolist(), payloads, strict=True)
    ]
    grouped = any(group is not None for group in groups)
    if len(vectors) < 2 or not grouped:
        return Inspection(points, [], 0, None, len(vectors), grouped)
    neighbour, score = nearest_other(F.normalize(vectors, dim=1))
    wrong = [i for i, j in enumerate(neighbour.tolist()) if groups[i] != groups[j]]
    wrong.sort(key=lambda i: (-float(score[i]), int(ids[i])))
    confusions = [
        {
            **_ids(ids[i]),
            "score": float(score[i]),
            **shown(payloads[i]),
            "neighbour": {**_ids(ids[neighbour[i]]), **shown(payloads[neighbour[i]])},
        }
        for i in wrong[:MAX_CONFUSIONS]
    ]
    baseline_confused = None
    if baseline is not None and len(baseline[0]) >= 2:
        base_ids, base_vectors, base_payloads = baseline
        base_groups = [group_of(payload) for payload in base_payloads]
        base_neighbour, _ = nearest_other(F.normalize(base_vectors, dim=1))
        baseline_confused = sum(
            base_groups[i] != base_groups[j] for i, j in enumerate(base_neighbour.tolist())
        )
    return Inspection(points, confusions, len(wrong), baseline_confused, len(vectors))


class SearchService:
    """A servable and the store it indexed (plus, when present, the frozen-encoder baseline
    store), read only.

    Args:
        model: the servable.
        store: the servable's vectors of the indexed objects.
        baseline_store: the frozen encoders' vectors of the same objects, or None.
        description: what `/health` reports as the model and store.
        inspect_limit: most stored points read for the page's map and confusions.
        encode_batch_size: objects per forward pass within one micro-batch. `encode` orders
            texts by length before it cuts them into passes, so passes of a few similar texts
            pad far less than one pass over the whole micro-batch (the requests of concurrent
            clients come in any order of length): on MiniLM over WordNet definitions, passes
            of 8 cost 0.6 of one pass of 32 per text.
    """

    def __init__(
        self,
        model: SimilarityModel,
        store: VectorStore,
        baseline_store: VectorStore | None = None,
        description: dict[str, str] | None = None,
        inspect_limit: int = 5000,
        encode_batch_size: int = 8,
    ):
        if encode_batch_size < 1:
            raise ValueError(f"encode_batch_size must be at least 1, got {encode_batch_size}")
        self.model = model.eval()
        self.encode_batch_size = encode_batch_size
        self.baseline = None
        if baseline_store is not None:
            try:
                self.baseline = frozen_baseline(model)
            except ValueError as error:  # the original model is gone: serve the trained model
                warnings.warn(f"Serving without the frozen baseline. {error}", stacklevel=2)
                baseline_store.close()
                baseline_store = None
        self.store = store
        self.baseline_store = baseline_store
        self.description = description or {}
        self.inspect_limit = inspect_limit
        self._inspection: Inspection | None = None
        self._cleanup: list[Any] = []

    @classmethod
    def open(
        cls,
        servable: str,
        location: str,
        collection: str = DEFAULT_COLLECTION,
        inspect_limit: int = 5000,
        encode_batch_size: int = 8,
    ) -> SearchService:
        """Load the servable and open its store at `location` (a directory or a server URL).

        Opening an embedded Qdrant Edge store rewrites some of its files, so a directory is
        copied to a private temporary directory first: the service never writes to the store.

        Args:
            servable: a servable directory.
            location: the store: a directory or a Qdrant server URL.
            collection: the collection on a server.
            inspect_limit: most points the page's map and confusions read.
            encode_batch_size: objects per forward pass within one micro-batch.
        """
        model = SimilarityModel.load(servable)
        # a store of another model's vectors is refused (this also refuses a missing store)
        check_store_servable(location, servable, model.head.output_size, collection)
        opened = location
        scratch = None
        if not is_url(location):
            check_store_directory(location)
            scratch = tempfile.TemporaryDirectory(prefix="quaterion-serve-")
            opened = str(Path(scratch.name) / "store")
            shutil.copytree(location, opened)
        try:
            store = open_store(opened, model.head.output_size, collection)
            where, baseline_collection = baseline_location(opened, collection)
            try:
                baseline_store = open_store(
                    where, model.head.input_embedding_size, baseline_collection
                )
            except FileNotFoundError:
                baseline_store = None
        except Exception:
            if scratch is not None:
                scratch.cleanup()
            raise
        service = cls(
            model,
            store,
            baseline_store,
            description={"model": str(servable), "store": str(location)},
            inspect_limit=inspect_limit,
            encode_batch_size=encode_batch_size,
        )
        if scratch is not None:
            service._cleanup.append(scratch)
        return service

    def close(self) -> None:
        """Close the stores and remove the private copy."""
        for store in (self.store, self.baseline_store):
            if store is not None:
                store.close()
        for scratch in self._cleanup:
            scratch.cleanup()
        self._cleanup.clear()

    def health(self) -> dict[str, Any]:
        """What `/health` reports."""
        return {
            "status": "ok",
            **self.description,
            "embedding_size": self.model.head.output_size,
            "points": self.store.count(),
            "baseline": self.baseline_store is not None,
        }

    def encode_batch(self, requests: list[list[Any]]) -> list[list[list[float]]]:
        """Embeddings of every request's objects, from one forward pass over all of them.

        Args:
            requests: the objects of each queued /encode request.
        """
        objects = [obj for request in requests for obj in request]
        embeddings = self.model.encode(objects, batch_size=self.encode_batch_size, to_numpy=False)
        rows = embeddings.tolist()
        out, start = [], 0
        for request in requests:
            out.append(rows[start : start + len(request)])
            start += len(request)
        return out

    def search_batch(self, requests: list[tuple[Any, int, bool]]) -> list[dict[str, Any]]:
        """Hits of every `(query, limit, baseline)`, from one encoder pass over all the raw
        queries and one store call per store; a `StoredPoint` query searches with the vectors
        stored for that point (nothing is encoded). The frozen baseline's store is searched
        only for the queries that ask for it (and when the store has one). A missing stored
        point raises a LookupError.

        Args:
            requests: `(query, limit, baseline)` of each queued /search request; a query is a
                raw object or a `StoredPoint`.
        """
        k = max(request[1] for request in requests)
        stored = [i for i, request in enumerate(requests) if isinstance(request[0], StoredPoint)]
        raw = [i for i, request in enumerate(requests) if i not in set(stored)]
        wanted = [i for i, request in enumerate(requests) if request[2]]
        with_baseline = self.baseline_store is not None and bool(wanted)
        trained = torch.zeros(len(requests), self.store.dim)
        frozen = torch.zeros(len(requests), self.baseline_store.dim) if with_baseline else None
        answers: list[dict[str, Any]] = [{} for _ in requests]
        if raw:
            queries = [requests[i][0] for i in raw]
            batch_size = self.encode_batch_size
            if frozen is None:
                trained[raw] = self.model.encode(queries, batch_size=batch_size, to_numpy=False)
            else:
                frozen[raw], trained[raw] = encode_with_baseline(
                    self.model, queries, batch_size=batch_size, baseline=self.baseline
                )
        if stored:
            ids = [requests[i][0].id for i in stored]
            vectors, payloads = _stored(self.store, ids)
            trained[stored] = vectors
            for index, point_id, payload in zip(stored, ids, payloads, strict=True):
                answers[index]["query"] = {**_ids(point_id), **shown(payload)}
            if frozen is not None:
                frozen[stored] = _stored(self.baseline_store, ids)[0]
        found = _hits(self.store.search(trained, k=k))
        if frozen is not None:
            frozen_hits = _hits(self.baseline_store.search(frozen[wanted], k=k))
            for index, hits in zip(wanted, frozen_hits, strict=True):
                answers[index]["baseline"] = hits[: requests[index][1]]
        for index, request in enumerate(requests):
            answers[index]["hits"] = found[index][: request[1]]
        return answers

    def inspection(self) -> Inspection:
        """The page's map and confusions, computed on first use."""
        if self._inspection is None:
            baseline = None
            if self.baseline_store is not None:
                baseline = self.baseline_store.points(self.inspect_limit)
            self._inspection = inspect_points(*self.store.points(self.inspect_limit), baseline)
        return self._inspection


@dataclass(frozen=True)
class StoredPoint:
    """A `/search` query that is a stored point: the search uses its stored vectors.

    Args:
        id: the point's id.
    """

    id: int


def _stored(store: VectorStore, ids: list[int]) -> tuple[Tensor, list[dict[str, Any]]]:
    """Vectors `[len(ids), dim]` and payloads of the stored points `ids`, or a LookupError
    naming the first missing one."""
    found, vectors, payloads = store.retrieve(ids)
    rows = {point_id: row for row, point_id in enumerate(found.tolist())}
    missing = [point_id for point_id in ids if point_id not in rows]
    if missing:
        raise LookupError(
            f"no stored point has id {missing[0]}; pick the id of a hit or of a point on the map"
        )
    order = [rows[point_id] for point_id in ids]
    return vectors[order], [payloads[row] for row in order]


def _hits(result: Any) -> list[list[dict[str, Any]]]:
    """Per query, `{"id", "score", "group", "object", "kind"}` of each hit, best first."""
    return [
        [
            {**_ids(point_id), "score": score, **shown(payload)}
            for point_id, score, payload in zip(ids, scores, payloads, strict=False)
            if point_id >= 0
        ]
        for ids, scores, payloads in zip(
            result.ids.tolist(), result.scores.tolist(), result.payloads, strict=True
        )
    ]
