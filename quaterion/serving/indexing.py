"""Index objects into a store without ever overwriting by position.

`check_index` runs before anything is encoded and writes nothing: an existing store is
written only with `mode="append"` (add these objects; an object already there is updated, not
duplicated) or `mode="replace"` (the store then holds these objects alone), and only by the
servable that built it (unless replaced). `index_objects` then writes the points under
content-derived ids, with the frozen baseline beside them when given, and the store's record
(servable and data fingerprints) last, so an interrupted run is recognisable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor

from quaterion.serving.locations import DEFAULT_COLLECTION, baseline_location, is_url, open_store
from quaterion.serving.provenance import (
    StoreRecord,
    data_fingerprint,
    point_ids,
    read_store_record,
    servable_fingerprint,
)
from quaterion.serving.qdrant_edge_store import CONFIG_FILE
from quaterion.serving.recall import index_embeddings

MODES = ("new", "append", "replace")


@dataclass
class IndexReport:
    """What an index run did.

    Args:
        objects: objects given.
        distinct: distinct objects among them (one point each).
        added: points that are new.
        updated: points that were already there (same objects), now updated.
        total: points the store holds now.
    """

    objects: int
    distinct: int
    added: int
    updated: int
    total: int

    def describe(self, location: str) -> str:
        """One line saying what was indexed into `location`.

        Args:
            location: where the store is, as the user named it.
        """
        return (
            f"Indexed {self.objects} objects ({self.distinct} distinct) into {location}: "
            f"{self.added} new points, {self.updated} already there and updated; the store "
            f"holds {self.total} points"
        )


def _existing_record(location: str, dim: int, collection: str) -> StoreRecord | None | bool:
    """The record of the store at `location`: False when there is no store, None when there
    is one without a usable record. Writes nothing; a directory that is not a store, or a
    file, is refused."""
    if not is_url(location):
        path = Path(location)
        if path.exists() and not path.is_dir():
            raise FileExistsError(f"Cannot create a vector store at {path}: a file is in the way")
        if not (path / CONFIG_FILE).is_file() and path.is_dir() and any(path.iterdir()):
            raise FileExistsError(
                f"{path} is a non-empty directory that is not a vector store; index into a new "
                "or empty directory, or into a store made by `quaterion index`"
            )
    try:
        return read_store_record(location, dim, collection)
    except FileNotFoundError:
        return False


def check_index(
    location: str,
    servable: str,
    dim: int,
    mode: str = "new",
    collection: str = DEFAULT_COLLECTION,
) -> None:
    """Refuse, before anything is encoded or written, an index run of `dim`-wide vectors that
    would mix stores.

    Args:
        location: a store directory or a Qdrant server URL.
        servable: the servable directory whose vectors will be indexed.
        dim: the width of its vectors.
        mode: "new" (the store must not exist), "append" or "replace".
        collection: the collection on a server.
    """
    if mode not in MODES:
        raise ValueError(f"Unknown index mode {mode!r}; choose one of {list(MODES)}")
    record = _existing_record(location, dim, collection)
    if record is False or mode == "replace":
        return
    if mode == "new":
        raise FileExistsError(
            f"A vector store already exists at {location}; pass --append to add these objects "
            "to it (objects already there are updated, not duplicated) or --replace to rebuild "
            "it from these objects alone"
        )
    if record is None or not record.complete or record.dim != dim:
        raise ValueError(
            f"The store at {location} was not completed by `quaterion index` with vectors of "
            f"this width (no record, an interrupted run, or not {dim}-d vectors), so nothing "
            "is appended to it; rebuild it with --replace"
        )
    if record.servable != servable_fingerprint(servable):
        raise ValueError(
            f"The store at {location} was indexed with another servable than {servable}; "
            "vectors of two models are not comparable, so they are not appended: use --replace "
            "to rebuild it with this servable, or another store"
        )


def _write(
    location: str,
    collection: str,
    record: StoreRecord,
    ids: list[int],
    vectors: Tensor,
    payloads: Sequence[dict[str, Any]],
    replace: bool,
) -> tuple[int, int]:
    """Write one store (the record first marked incomplete, the points, then the record);
    returns the point counts before and after."""
    dim = vectors.shape[1]
    with open_store(location, dim, collection, create=True, recreate=replace) as store:
        before = store.count()
        StoreRecord(record.servable, dim, record.data, complete=False).write(store)
        index_embeddings(store, vectors, payloads, ids=ids)
        record.write(store)
        return before, store.count()


def index_objects(
    location: str,
    servable: str,
    objects: Sequence[Any],
    labels: Sequence[Any],
    payloads: Sequence[dict[str, Any]],
    embeddings: Tensor,
    baseline: Tensor | None = None,
    mode: str = "new",
    collection: str = DEFAULT_COLLECTION,
) -> IndexReport:
    """Upsert `embeddings` (the servable's, `[N, D]`) of `objects` into the store at `location`
    under content-derived ids, and `baseline` (the frozen encoders' vectors) beside it.

    Args:
        location: a store directory or a Qdrant server URL.
        servable: the servable directory that embedded `objects`.
        objects: the indexed objects (their content gives the point ids).
        labels: their labels (groups or scores), part of the data fingerprint.
        payloads: one payload per object.
        embeddings: `[N, D]` vectors of the servable.
        baseline: `[N, D_in]` vectors of its frozen encoders, or None.
        mode: "new" (the store must not exist), "append" or "replace".
        collection: the collection on a server.

    Returns:
        what was added and updated.
    """
    check_index(location, servable, embeddings.shape[1], mode, collection)
    ids = point_ids(objects)
    fingerprint = servable_fingerprint(servable)
    previous = _existing_record(location, embeddings.shape[1], collection)
    history = previous.data if isinstance(previous, StoreRecord) and mode == "append" else []
    data = [*history, data_fingerprint(objects, labels)]
    record = StoreRecord(fingerprint, embeddings.shape[1], data, complete=True)
    before, after = _write(
        location, collection, record, ids, embeddings, payloads, replace=mode == "replace"
    )
    if baseline is not None:
        where, baseline_collection = baseline_location(location, collection)
        record = StoreRecord(fingerprint, baseline.shape[1], data, complete=True)
        _write(where, baseline_collection, record, ids, baseline, payloads, mode == "replace")
    distinct = len(set(ids))
    added = after - before
    return IndexReport(len(ids), distinct, added, distinct - added, after)
