"""Serving embeddings from Qdrant (extra `quaterion[qdrant]`).

`VectorStore` is the interface; `QdrantEdgeStore` (embedded, persisted in a directory) is the
default backend and `QdrantClientStore` talks to a Qdrant server (or qdrant-client's local mode).
"""

from quaterion.serving.qdrant_client_store import QdrantClientStore
from quaterion.serving.qdrant_edge_store import QdrantEdgeStore
from quaterion.serving.recall import RecallReport, ann_recall, exact_top_k, index_embeddings
from quaterion.serving.vector_store import DISTANCES, SearchResult, VectorStore

__all__ = [
    "DISTANCES",
    "QdrantClientStore",
    "QdrantEdgeStore",
    "RecallReport",
    "SearchResult",
    "VectorStore",
    "ann_recall",
    "exact_top_k",
    "index_embeddings",
]
