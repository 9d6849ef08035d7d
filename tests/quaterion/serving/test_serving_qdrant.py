"""VectorStore backends: embedded Qdrant Edge (default) and qdrant-client's local mode."""

import sys

import pytest
import torch

from quaterion.serving import (
    QdrantClientStore,
    QdrantEdgeStore,
    ann_recall,
    exact_top_k,
    index_embeddings,
)

pytest.importorskip("qdrant_edge")
pytest.importorskip("qdrant_client")


def clustered(n: int, dim: int, seed: int) -> torch.Tensor:
    """Points around 20 random centres (structured like real embeddings)."""
    generator = torch.Generator().manual_seed(seed)
    centres = torch.randn(20, dim, generator=generator) * 3
    labels = torch.randint(0, 20, (n,), generator=generator)
    return centres[labels] + torch.randn(n, dim, generator=generator)


def loop_top_k(corpus, queries, k, distance):
    """Oracle: score every (query, point) pair in Python, sort, keep k."""
    result = []
    for query in queries:
        scored = []
        for index, point in enumerate(corpus):
            if distance == "cosine":
                key = -float(torch.dot(query, point) / (query.norm() * point.norm()))
            elif distance == "dot_product":
                key = -float(torch.dot(query, point))
            elif distance == "euclidean":
                key = float(((query - point) ** 2).sum().sqrt())
            else:
                key = float((query - point).abs().sum())
            scored.append((key, index))
        result.append([index for _, index in sorted(scored)[:k]])
    return torch.tensor(result)


@pytest.mark.parametrize("distance", ["cosine", "dot_product", "euclidean", "manhattan"])
def test_exact_top_k_matches_a_plain_loop(distance):
    corpus, queries = clustered(60, 5, seed=1), clustered(7, 5, seed=2)
    expected = loop_top_k(corpus, queries, 4, distance)
    assert torch.equal(exact_top_k(corpus, queries, 4, distance, chunk_size=3), expected)


def test_edge_store_indexes_searches_and_persists(tmp_path):
    vectors = clustered(300, 16, seed=0)
    payloads = [{"row": i, "label": f"item-{i}"} for i in range(300)]
    with QdrantEdgeStore(tmp_path / "shard", dim=16) as store:
        index_embeddings(store, vectors, payloads, batch_size=128)
        assert store.count() == 300
        result = store.search(vectors[:5], k=3)
        assert result.ids[:, 0].tolist() == [0, 1, 2, 3, 4]
        assert [hits[0] for hits in result.payloads] == payloads[:5]
        assert torch.all(result.scores[:, :-1] >= result.scores[:, 1:])  # best first
        expected = exact_top_k(vectors, vectors[:5], 3, "cosine")
        assert torch.equal(result.ids, expected)  # below the indexing threshold: exact
    with QdrantEdgeStore(tmp_path / "shard", dim=16) as reopened:
        assert reopened.count() == 300
        assert reopened.search(vectors[7:8], k=1).payloads == [[payloads[7]]]
    with pytest.raises(ValueError, match="Cannot open the Qdrant Edge shard"):
        QdrantEdgeStore(tmp_path / "shard", dim=8)


def test_edge_hnsw_recall_and_qps(tmp_path):
    corpus, queries = clustered(2000, 32, seed=3), clustered(100, 32, seed=4)
    with QdrantEdgeStore(tmp_path / "hnsw", dim=32, indexing_threshold_kb=1) as store:
        index_embeddings(store, corpus)
        store.optimize()
        report = ann_recall(store, corpus, queries, k=10)
    assert report.k == 10 and report.queries == 100
    assert 0.9 <= report.recall <= 1.0
    assert report.qps > 0 and report.exact_qps > 0


@pytest.mark.parametrize("distance", ["cosine", "euclidean"])
def test_client_local_mode_agrees_with_exact_search(distance):
    corpus, queries = clustered(200, 8, seed=5), clustered(6, 8, seed=6)
    with QdrantClientStore("test", dim=8, distance=distance, location=":memory:") as store:
        index_embeddings(store, corpus, [{"row": i} for i in range(200)], batch_size=64)
        assert store.count() == 200
        result = store.search(queries, k=5)
        assert torch.equal(result.ids, exact_top_k(corpus, queries, 5, distance))
        assert [hits[0]["row"] for hits in result.payloads] == result.ids[:, 0].tolist()
        if distance == "euclidean":  # distances: closest first, ascending
            assert torch.all(result.scores[:, :-1] <= result.scores[:, 1:])
        assert ann_recall(store, corpus, queries, k=5).recall == 1.0


def test_client_rejects_a_mismatched_existing_collection(tmp_path):
    with QdrantClientStore("c", dim=4, path=tmp_path) as store:
        store.upsert([1], torch.ones(1, 4))
    with pytest.raises(ValueError, match="not 3-d cosine"):
        QdrantClientStore("c", dim=3, path=tmp_path)


def test_results_are_padded_when_k_exceeds_the_points(tmp_path):
    with QdrantEdgeStore(tmp_path / "small", dim=2, distance="dot_product") as store:
        store.upsert([10, 20], torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
        result = store.search(torch.tensor([[1.0, 0.5]]), k=4)
    store.close()  # closing twice is harmless
    assert result.ids.tolist() == [[10, 20, -1, -1]]
    assert torch.allclose(result.scores[0, :2], torch.tensor([1.0, 0.5]))
    assert torch.isnan(result.scores[0, 2:]).all()


def test_bad_inputs_raise_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="choose one of"):
        QdrantEdgeStore(tmp_path / "a", dim=2, distance="hamming")
    with pytest.raises(ValueError, match="exactly one of url="):
        QdrantClientStore("c", dim=2)
    with QdrantEdgeStore(tmp_path / "b", dim=2) as store:
        with pytest.raises(ValueError, match=r"must be \[N, 2\], got shape \(1, 3\)"):
            store.upsert([1], torch.ones(1, 3))
        with pytest.raises(ValueError, match="2 ids, 1 vectors"):
            store.upsert([1, 2], torch.ones(1, 2))
        with pytest.raises(ValueError, match="non-negative"):
            store.upsert([-1], torch.ones(1, 2))
        with pytest.raises(ValueError, match="NaN"):
            store.upsert([1], torch.tensor([[float("nan"), 1.0]]))
        with pytest.raises(ValueError, match="k must be at least 1"):
            store.search(torch.ones(1, 2), k=0)
        with pytest.raises(ValueError, match="index the corpus"):
            ann_recall(store, torch.ones(5, 2), torch.ones(1, 2))


def test_missing_backend_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "qdrant_edge", None)
    with pytest.raises(ImportError, match=r"quaterion\[qdrant\]"):
        QdrantEdgeStore(tmp_path / "x", dim=2)


@pytest.mark.parametrize("backend", ["edge", "client"])
def test_retrieve_gives_stored_points_in_the_order_asked_and_leaves_out_missing(tmp_path, backend):
    vectors = torch.nn.functional.normalize(clustered(40, 8, seed=5), dim=1)
    payloads = [{"row": i} for i in range(40)]
    if backend == "edge":
        store = QdrantEdgeStore(tmp_path / "shard", dim=8)
    else:
        store = QdrantClientStore("c", dim=8, location=":memory:")
    with store:
        store.upsert(list(range(40)), vectors, payloads)
        ids, found, stored = store.retrieve([7, 999, 3])
        assert ids.tolist() == [7, 3]
        assert torch.allclose(found, vectors[[7, 3]], atol=1e-6)
        assert stored == [payloads[7], payloads[3]]
        empty_ids, empty, none = store.retrieve([1234])
        assert empty_ids.tolist() == [] and empty.shape == (0, 8) and none == []
