"""Index embeddings in a `VectorStore` and measure its ANN recall@k and queries per second."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from quaterion.serving.vector_store import VectorStore


def index_embeddings(
    store: VectorStore,
    embeddings: Tensor,
    payloads: Sequence[dict[str, Any]] | None = None,
    batch_size: int = 1024,
    ids: Sequence[int] | None = None,
) -> None:
    """Upsert `embeddings` `[N, D]` as points `ids` (with `payloads`), `batch_size` at a time.

    Args:
        store: the store to fill.
        embeddings: `[N, D]` vectors.
        payloads: one dict per row, or None.
        batch_size: points per upsert call.
        ids: one point id per row (default: row i becomes point i).
    """
    if payloads is not None and len(payloads) != len(embeddings):
        raise ValueError(f"Got {len(payloads)} payloads for {len(embeddings)} embeddings")
    if ids is not None and len(ids) != len(embeddings):
        raise ValueError(f"Got {len(ids)} ids for {len(embeddings)} embeddings")
    for start in range(0, len(embeddings), batch_size):
        stop = min(start + batch_size, len(embeddings))
        store.upsert(
            range(start, stop) if ids is None else ids[start:stop],
            embeddings[start:stop],
            None if payloads is None else payloads[start:stop],
        )


def exact_top_k(
    corpus: Tensor, queries: Tensor, k: int, distance: str, chunk_size: int = 1024
) -> Tensor:
    """Row indices `[Q, k]` of the k nearest corpus vectors of each query, by brute force.

    Args:
        corpus: `[N, D]` vectors searched.
        queries: `[Q, D]` query vectors.
        k: neighbours per query.
        distance: one of "cosine", "dot_product", "euclidean", "manhattan".
        chunk_size: queries compared at once.
    """
    if distance == "cosine":
        corpus, queries = F.normalize(corpus, dim=1), F.normalize(queries, dim=1)
    chunks = []
    for start in range(0, len(queries), chunk_size):
        block = queries[start : start + chunk_size]
        if distance in ("cosine", "dot_product"):
            closeness = block @ corpus.T  # [c, N], higher is closer
        else:
            closeness = -torch.cdist(block, corpus, p=2.0 if distance == "euclidean" else 1.0)
        chunks.append(closeness.topk(min(k, len(corpus)), dim=1).indices)
    return torch.cat(chunks)


@dataclass
class RecallReport:
    """ANN quality and speed of a store on one query set.

    Args:
        k: the cut-off.
        recall: mean over queries of |ANN top-k ∩ exact top-k| / k.
        queries: number of queries.
        qps: queries per second of `store.search` (one batched call).
        exact_qps: queries per second of exact torch search over the same corpus.
    """

    k: int
    recall: float  # mean over queries of |ANN top-k ∩ exact top-k| / k
    queries: int
    qps: float  # queries per second of `store.search` (one batched call)
    exact_qps: float  # same for the brute-force torch search, the baseline


def ann_recall(store: VectorStore, corpus: Tensor, queries: Tensor, k: int = 10) -> RecallReport:
    """Recall@k of `store.search` against the exact top-k of `corpus` (point i = row i).

    `corpus` must be what `index_embeddings(store, corpus)` indexed.

    Args:
        store: a store holding `corpus` as points 0..N-1.
        corpus: `[N, D]` the indexed vectors.
        queries: `[Q, D]` query vectors.
        k: the cut-off.
    """
    if store.count() != len(corpus):
        raise ValueError(
            f"The store holds {store.count()} points but the corpus has {len(corpus)} rows; "
            "index the corpus with index_embeddings first"
        )
    corpus, queries = corpus.float(), queries.float()
    started = time.perf_counter()
    exact = exact_top_k(corpus, queries, k, store.distance)
    exact_seconds = time.perf_counter() - started
    started = time.perf_counter()
    found = store.search(queries, k).ids
    seconds = time.perf_counter() - started
    hits = sum(
        len(set(row.tolist()) & set(truth.tolist()))
        for row, truth in zip(found, exact, strict=True)
    )
    return RecallReport(
        k=k,
        recall=hits / (len(queries) * min(k, len(corpus))),
        queries=len(queries),
        qps=len(queries) / seconds,
        exact_qps=len(queries) / exact_seconds,
    )
