"""What built a vector store, and the stable ids of its points.

A store's vectors are comparable only with queries embedded by the servable that embedded
them, so `quaterion index` records the servable's fingerprint (and the fingerprints of the
data sets it indexed) in the store's metadata, and `quaterion search` (or `quaterion serve`)
refuses a servable whose fingerprint differs. Point ids derive from the objects themselves, so
indexing the same object again updates its point instead of adding a duplicate, and a second
data set never overwrites the first one's points by position.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from quaterion.serving.locations import (
    DEFAULT_COLLECTION,
    check_store_directory,
    is_url,
    open_store,
)
from quaterion.serving.qdrant_edge_store import read_edge_metadata
from quaterion.serving.vector_store import VectorStore
from quaterion.utils.digest import DIGEST_SIZE, sample_digest
from quaterion_models.utils.files import read_json

RECORD_VERSION = 1


@dataclass
class StoreRecord:
    """The metadata `quaterion index` keeps in a store.

    Args:
        servable: fingerprint (`servable_fingerprint`) of the servable whose vectors it holds.
        dim: width of those vectors.
        data: fingerprints (`data_fingerprint`) of the data sets indexed, in order.
        complete: False while points are being written (an interrupted index stays False).
        version: format version of the record.
    """

    servable: str  # fingerprint of the servable whose vectors the store holds
    dim: int  # width of those vectors
    data: list[str] = field(default_factory=list)  # fingerprints of the data sets, in order
    complete: bool = False  # False while points are being written (an interrupted index)
    version: int = RECORD_VERSION

    @classmethod
    def from_metadata(cls, metadata: dict[str, Any]) -> StoreRecord | None:
        """The record in a store's metadata; None when it holds none (not built by
        `quaterion index`, or written by another version or by hand).

        Args:
            metadata: what `VectorStore.metadata()` returned.
        """
        try:
            return cls(**metadata) if metadata else None
        except TypeError:
            return None

    def write(self, store: VectorStore) -> None:
        """Record this in `store`'s metadata.

        Args:
            store: the open store.
        """
        store.write_metadata(asdict(self))


def servable_fingerprint(path: str | os.PathLike) -> str:
    """Digest of a saved servable: its config, which lists the size and sha256 of every file
    it holds, so any change of weights, configs or tokenizer files changes it.

    Args:
        path: the servable directory.
    """
    config = read_json(Path(path) / "config.json", "model config")
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(canonical).hexdigest()


def point_ids(objects: Sequence[Any]) -> list[int]:
    """A stable non-negative 63-bit id per object, derived from its content alone.

    Args:
        objects: the objects (texts, tensors, ...) to be stored as points.
    """
    return [int.from_bytes(sample_digest(obj)[:8], "big") >> 1 for obj in objects]


def data_fingerprint(objects: Sequence[Any], labels: Sequence[Any]) -> str:
    """Digest of the indexed data: every object and its label, in order.

    Args:
        objects: the indexed objects.
        labels: their labels (groups or scores).
    """
    digest = hashlib.blake2b(digest_size=DIGEST_SIZE)
    for obj, label in zip(objects, labels, strict=True):
        digest.update(sample_digest((obj, label)))
    return digest.hexdigest()


def read_store_record(
    location: str, dim: int, collection: str = DEFAULT_COLLECTION
) -> StoreRecord | None:
    """The record of the store at `location` (a directory or a server URL), read without
    writing anything; None when it has none or holds vectors of another width than `dim`.
    A FileNotFoundError naming the fix when there is no store there.

    Args:
        location: a store directory or a Qdrant server URL.
        dim: the width of the vectors expected there.
        collection: the collection on a server.
    """
    if not is_url(location):
        check_store_directory(location)
        return StoreRecord.from_metadata(read_edge_metadata(location))
    try:
        store = open_store(location, dim, collection, create=False)
    except ValueError:  # a collection of vectors of another width
        return None
    with store:
        return StoreRecord.from_metadata(store.metadata())


def check_store_servable(
    location: str,
    servable: str | os.PathLike,
    dim: int,
    collection: str = DEFAULT_COLLECTION,
) -> None:
    """Refuse (ValueError naming the fix) a store not indexed completely by `servable`, whose
    vectors are `dim` wide; FileNotFoundError when there is no store. Writes nothing.

    Args:
        location: a store directory or a Qdrant server URL.
        servable: the servable directory that is to query the store.
        dim: the width of that servable's vectors.
        collection: the collection on a server.
    """
    record = read_store_record(location, dim, collection)
    if record is None:
        raise ValueError(
            f"The store at {location} records no servable of {dim}-d vectors (it was not built "
            "by `quaterion index`, or by an older version), so it cannot be checked against "
            f"{servable}; rebuild it with `quaterion index {servable} DATA --replace`"
        )
    if not record.complete:
        raise ValueError(
            f"The store at {location} was left incomplete by an interrupted `quaterion index`; "
            f"rebuild it with `quaterion index {servable} DATA --replace`"
        )
    if record.servable != servable_fingerprint(servable) or record.dim != dim:
        raise ValueError(
            f"The store at {location} was indexed with another servable than {servable} "
            "(their fingerprints differ), so their vectors are not comparable; search it with "
            "the servable that built it, or re-index it with `quaterion index "
            f"{servable} DATA --replace`"
        )
