"""Qdrant Edge HNSW vs exact torch search: recall@10 and queries per second on real data.

Corpus: Fashion-MNIST training images (pixels in [0, 1]) projected to `--dim` dimensions by a
seeded Gaussian random projection (distances are roughly preserved); queries: test images.
The baseline is brute-force torch top-10 over the same vectors in the same run. Prints one
JSON line.

    python bench/bench_qdrant.py [--corpus 60000] [--queries 1000] [--dim 128]
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import torch

from quaterion.data import load_fashion_mnist
from quaterion.serving import QdrantEdgeStore, ann_recall, index_embeddings


def project(images: torch.Tensor, projection: torch.Tensor) -> torch.Tensor:
    return (images.flatten(1).float() / 255.0) @ projection  # [N, dim]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=int, default=60_000)
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--m", type=int, default=16)
    parser.add_argument("--ef-construct", type=int, default=100)
    args = parser.parse_args()

    train, _ = load_fashion_mnist("train", limit=args.corpus)
    test, _ = load_fashion_mnist("test", limit=args.queries)
    generator = torch.Generator().manual_seed(0)
    projection = torch.randn(28 * 28, args.dim, generator=generator) / args.dim**0.5
    corpus, queries = project(train, projection), project(test, projection)

    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        store = QdrantEdgeStore(
            Path(tmp) / "shard",
            dim=args.dim,
            hnsw_m=args.m,
            hnsw_ef_construct=args.ef_construct,
            indexing_threshold_kb=1,
        )
        with store:
            started = time.perf_counter()
            index_embeddings(store, corpus)
            upsert_seconds = time.perf_counter() - started
            started = time.perf_counter()
            store.optimize()
            build_seconds = time.perf_counter() - started
            ann_recall(store, corpus, queries[:50])  # burn-in
            for ef in (None, 64, 256):
                store.search_ef = ef
                report = ann_recall(store, corpus, queries, k=10)
                runs.append(
                    {
                        "hnsw_ef": ef or "default",
                        "recall_at_10": round(report.recall, 4),
                        "qps": round(report.qps, 1),
                        "exact_torch_qps": round(report.exact_qps, 1),
                        "qps_ratio_vs_exact": round(report.qps / report.exact_qps, 3),
                    }
                )
    print(
        json.dumps(
            {
                "bench": "qdrant_edge_hnsw_vs_exact_torch",
                "data": "Fashion-MNIST, random projection",
                "corpus": len(corpus),
                "queries": len(queries),
                "dim": args.dim,
                "distance": "cosine",
                "hnsw_m": args.m,
                "ef_construct": args.ef_construct,
                "upsert_s": round(upsert_seconds, 2),
                "index_build_s": round(build_seconds, 2),
                "runs": runs,
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
