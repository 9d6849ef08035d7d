"""Where a store lives: a directory (embedded Qdrant Edge) or a Qdrant server URL.

`quaterion index` writes a store, `quaterion search` and `quaterion serve` read it. Next to the
trained model's vectors a store may hold the frozen encoder's vectors of the same points (the
baseline the page compares against): the `baseline/` sub-directory of an Edge store, or the
collection `<collection>-baseline` on a server.
"""

from __future__ import annotations

from pathlib import Path

from quaterion.serving.qdrant_client_store import QdrantClientStore
from quaterion.serving.qdrant_edge_store import CONFIG_FILE, QdrantEdgeStore
from quaterion.serving.vector_store import VectorStore

DEFAULT_COLLECTION = "quaterion"
BASELINE = "baseline"  # Edge sub-directory / collection suffix of the frozen baseline


def is_url(location: str) -> bool:
    """True when `location` names a Qdrant server rather than a directory.

    Args:
        location: a directory or a URL.
    """
    return location.startswith(("http://", "https://"))


def open_store(
    location: str,
    dim: int,
    collection: str = DEFAULT_COLLECTION,
    create: bool = False,
    recreate: bool = False,
) -> VectorStore:
    """The cosine store at `location` (a directory or a server URL); with `create=False` a
    missing store is a FileNotFoundError naming the command that builds it (and nothing is
    written).

    Args:
        location: a directory (embedded Qdrant Edge) or a Qdrant server URL.
        dim: vector width.
        collection: collection name on a server.
        create: create the store when it is missing.
        recreate: delete an existing store first (its points and metadata).
    """
    if is_url(location):
        return QdrantClientStore(
            collection, dim=dim, distance="cosine", url=location, create=create, recreate=recreate
        )
    if not create:
        check_store_directory(location)
    return QdrantEdgeStore(location, dim=dim, distance="cosine", create=create, recreate=recreate)


def check_store_directory(location: str) -> None:
    """A FileNotFoundError naming the fix when directory `location` holds no Edge store.

    Args:
        location: the directory.
    """
    if not (Path(location) / CONFIG_FILE).is_file():
        raise FileNotFoundError(
            f"No vector store at {location}; create one with `quaterion index SERVABLE DATA "
            f"--store {location}`"
        )


def baseline_location(location: str, collection: str = DEFAULT_COLLECTION) -> tuple[str, str]:
    """(location, collection) of the frozen-encoder baseline that sits beside a store.

    Args:
        location: the store's directory or server URL.
        collection: the store's collection.
    """
    if is_url(location):
        return location, f"{collection}-{BASELINE}"
    return str(Path(location) / BASELINE), collection
