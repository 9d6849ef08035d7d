"""The chunked retrieval engine: against pytorch-metric-learning, hand-worked values, a plain-loop
oracle, chunk-size invariance (with exact ties) and bad input."""

import math

import pytest
import torch
import torch.nn.functional as F
from pytorch_metric_learning.distances import CosineSimilarity, LpDistance
from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
from pytorch_metric_learning.utils.inference import CustomKNN

from quaterion.distances import Distance
from quaterion.eval import ranking
from quaterion.eval.retrieval import (
    dense_query_scores,
    pair_retrieval_metrics,
    ranked_topk,
    retrieval_metrics,
)

PML_KEYS = {
    "precision_at_1": "precision@1",
    "r_precision": "r_precision",
    "mean_average_precision_at_r": "map@r",
}


def clustered(num: int, dim: int, num_groups: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Points around group centres (metrics well inside (0, 1)), plus 5 singleton groups."""
    generator = torch.Generator().manual_seed(seed)
    groups = torch.randint(0, num_groups, (num,), generator=generator)
    groups[:5] = torch.arange(num_groups, num_groups + 5)
    centres = torch.randn(num_groups + 5, dim, generator=generator)
    embeddings = centres[groups] + 0.9 * torch.randn(num, dim, generator=generator)
    return embeddings, groups


def unambiguous_first(distances: torch.Tensor, groups: torch.Tensor, gap: float) -> torch.Tensor:
    """Order of the points putting first those whose ranking down to rank R+1 has no near-tie
    (adjacent float64 distances closer than ``gap``), so float32 rounding cannot reorder it."""
    distances = distances.clone().fill_diagonal_(torch.inf)
    relevant = (groups[:, None] == groups[None, :]).sum(1) - 1
    nearest = distances.topk(int(relevant.max()) + 2, dim=1, largest=False).values
    steps = nearest.diff(dim=1)
    window = torch.arange(steps.shape[1]) <= relevant[:, None]
    safe = ~((steps < gap) & window).any(dim=1)
    return torch.cat([safe.nonzero().squeeze(1), (~safe).nonzero().squeeze(1)]), int(safe.sum())


@pytest.mark.parametrize(
    "distance, pml_distance",
    [
        (Distance.COSINE, CosineSimilarity()),
        (Distance.EUCLIDEAN, LpDistance(normalize_embeddings=False)),
        (Distance.DOT_PRODUCT, None),
    ],
)
def test_equals_pytorch_metric_learning(distance, pml_distance):
    embeddings, groups = clustered(2500, 16, 60, seed=11)
    if distance == Distance.DOT_PRODUCT:  # on unit vectors it ranks like cosine
        embeddings = F.normalize(embeddings, dim=1)
        pml_distance = CosineSimilarity()
    exact = embeddings.double()
    if distance == Distance.EUCLIDEAN:
        oracle = torch.cdist(exact, exact)
    else:
        unit = F.normalize(exact, dim=1)
        oracle = -(unit @ unit.T)
    order, num_queries = unambiguous_first(oracle, groups, gap=1e-5)
    assert num_queries > 1500
    embeddings, groups = embeddings[order], groups[order]
    calculator = AccuracyCalculator(
        include=tuple(PML_KEYS),
        k="max_bin_count",
        knn_func=CustomKNN(pml_distance),
        device=torch.device("cpu"),
    )
    expected = calculator.get_accuracy(
        embeddings[:num_queries], groups[:num_queries], embeddings, groups, ref_includes_query=True
    )
    for ks in [1, (5, 1), (3, 10, 40)]:
        ours = retrieval_metrics(
            embeddings,
            groups,
            ks,
            distance=distance,
            query_indices=torch.arange(num_queries),
            chunk_size=301,
        )
        for pml_key, key in PML_KEYS.items():
            if key in ours:  # precision@1 only when 1 is among the ks
                assert ours[key].item() == pytest.approx(expected[pml_key], abs=1e-6), (ks, key)


def slow_oracle(distances: torch.Tensor, gains: torch.Tensor, ks) -> dict[str, float]:
    """Plain-loop metrics: rank by (distance, index), self excluded, mean over queries with R>0."""
    sums: dict[str, float] = {}
    scored = 0
    for query in range(len(distances)):
        order = sorted(
            (j for j in range(distances.shape[1]) if j != query),
            key=lambda j: (distances[query, j].item(), j),
        )
        ranked = [gains[query, j].item() for j in order]
        relevant = sum(g > 0 for g in ranked)
        if relevant == 0:
            continue
        scored += 1
        ideal = sorted(ranked, reverse=True)
        values = {}
        for k in ks:
            values[f"precision@{k}"] = sum(ranked[:k]) / k
            values[f"recall@{k}"] = sum(ranked[:k]) / sum(ranked)
            dcg = sum(g / math.log2(i + 2) for i, g in enumerate(ranked[:k]))
            values[f"ndcg@{k}"] = dcg / sum(g / math.log2(i + 2) for i, g in enumerate(ideal[:k]))
        values["r_precision"] = sum(ranked[:relevant]) / relevant
        hits = [g > 0 for g in ranked]
        values["map@r"] = (
            sum(sum(hits[: i + 1]) / (i + 1) for i in range(relevant) if hits[i]) / relevant
        )
        values["mrr"] = 1 / (hits.index(True) + 1)
        for name, value in values.items():
            sums[name] = sums.get(name, 0.0) + value
    return {name: value / scored for name, value in sums.items()}


@pytest.mark.parametrize("rank_batch_elements", [None, 1, 250])
def test_pairs_equal_a_plain_loop_oracle(rank_batch_elements, monkeypatch):
    if rank_batch_elements is not None:  # the mrr of a query missing from its top list is
        # counted over its whole row, a few rows at a time: 1 or 2 rows here
        monkeypatch.setattr(ranking, "_RANK_BATCH_ELEMENTS", rank_batch_elements)
    generator = torch.Generator().manual_seed(3)
    embeddings = torch.randn(120, 6, generator=generator, dtype=torch.float64)
    pairs = torch.randint(0, 120, (150, 2), generator=generator)
    scores = torch.rand(150, generator=generator, dtype=torch.float64)
    scores[::7] = 0.0  # dissimilar pairs are not relevant
    gains = torch.zeros(120, 120, dtype=torch.float64)
    for (a, b), score in zip(pairs.tolist(), scores.tolist(), strict=True):
        if a != b:  # a pair listed twice keeps its highest score
            gains[a, b] = gains[b, a] = max(gains[a, b].item(), score)
    expected = slow_oracle(torch.cdist(embeddings, embeddings, p=1), gains, (1, 4, 10))
    for chunk_size in (1, 17, None):
        ours = pair_retrieval_metrics(
            embeddings, pairs, scores, (1, 4, 10), distance="manhattan", chunk_size=chunk_size
        )
        assert ours.keys() == expected.keys()
        for name, value in expected.items():
            assert ours[name].item() == pytest.approx(value, abs=1e-12), name


# Hand-worked example: points on a line, manhattan distance.
LINE = torch.tensor([[0.0], [1.0], [3.0], [6.0], [10.0]])


def test_hand_worked_groups():
    # groups 0,1,0,1,0 -> rankings (nearest first, ties by index) and relevance:
    # q0: 1,2,3,4 -> 0101   q1: 0,2,3,4 -> 0010   q2: 1,0,3,4 (0 and 3 tie at 3) -> 0101
    # q3: 2,4,1,0 -> 0010   q4: 3,2,1,0 -> 0101     R = 2,1,2,1,2
    result = retrieval_metrics(
        LINE, torch.tensor([0, 1, 0, 1, 0]), (2, 4), distance=Distance.MANHATTAN
    )
    d2, d3, d4 = 1 / math.log2(3), 1 / math.log2(4), 1 / math.log2(5)
    expected = {
        "precision@2": (0.5 + 0 + 0.5 + 0 + 0.5) / 5,
        "recall@2": (0.5 + 0 + 0.5 + 0 + 0.5) / 5,
        "ndcg@2": 3 * (d2 / (1 + d2)) / 5,
        "precision@4": (0.5 + 0.25 + 0.5 + 0.25 + 0.5) / 5,
        "recall@4": 1.0,
        "ndcg@4": (3 * (d2 + d4) / (1 + d2) + 2 * d3) / 5,
        "r_precision": (0.5 + 0 + 0.5 + 0 + 0.5) / 5,
        "map@r": (0.25 + 0 + 0.25 + 0 + 0.25) / 5,
        "mrr": (0.5 + 1 / 3 + 0.5 + 1 / 3 + 0.5) / 5,
    }
    assert result.keys() == expected.keys()
    for name, value in expected.items():
        assert result[name].item() == pytest.approx(value, abs=1e-6), name


def test_hand_worked_pairs():
    # pairs (0,3) 1.0, (1,2) 0.5, (2,4) 1.0; same rankings as above, so the gains are
    # q0: 0,0,1,0   q1: 0,.5,0,0   q2: .5,0,0,1   q3: 0,0,0,1   q4: 0,1,0,0
    result = pair_retrieval_metrics(
        LINE,
        torch.tensor([[0, 3], [1, 2], [2, 4]]),
        torch.tensor([1.0, 0.5, 1.0]),
        2,
        distance=Distance.MANHATTAN,
    )
    d2 = 1 / math.log2(3)
    expected = {
        "precision@2": (0 + 0.25 + 0.25 + 0 + 0.5) / 5,
        "recall@2": (0 + 1 + 0.5 / 1.5 + 0 + 1) / 5,
        "ndcg@2": (0 + (0.5 * d2) / 0.5 + 0.5 / (1 + 0.5 * d2) + 0 + d2) / 5,
        "r_precision": (0 + 0 + 0.5 / 2 + 0 + 0) / 5,
        "map@r": (0 + 0 + 1 / 2 + 0 + 0) / 5,
        "mrr": (1 / 3 + 1 / 2 + 1 + 1 / 4 + 1 / 2) / 5,
    }
    assert result.keys() == expected.keys()
    for name, value in expected.items():
        assert result[name].item() == pytest.approx(value, abs=1e-6), name


def test_separate_queries_are_not_self_excluded():
    # a query identical to candidate 1 retrieves it first
    result = retrieval_metrics(
        LINE,
        torch.tensor([0, 1, 0, 1, 0]),
        1,
        distance=Distance.EUCLIDEAN,
        query_embeddings=torch.tensor([[1.0], [9.0]]),
        query_groups=torch.tensor([1, 1]),
    )
    # query 0 -> candidate 1 (group 1): hit; query 1 -> candidate 4 (group 0), then 3: rank 2
    assert result["precision@1"].item() == pytest.approx(0.5)
    assert result["mrr"].item() == pytest.approx(0.75)


def test_chunk_size_never_changes_results_even_with_exact_ties():
    generator = torch.Generator().manual_seed(5)
    # few distinct points (coordinates 0..2): many exact duplicates and equal distances; BLAS
    # rounds a product differently for different chunk shapes, the ranking must not notice
    embeddings = torch.randint(0, 3, (64, 4), generator=generator).float() / 3
    groups = torch.randint(0, 6, (64,), generator=generator)
    pairs = torch.randint(0, 64, (80, 2), generator=generator)
    for distance in Distance:
        reference = retrieval_metrics(embeddings, groups, (1, 7), distance=distance, chunk_size=64)
        reference_pairs = pair_retrieval_metrics(embeddings, pairs, None, 3, distance=distance)
        for chunk_size in (1, 5, 24):
            chunked = retrieval_metrics(
                embeddings, groups, (1, 7), distance=distance, chunk_size=chunk_size
            )
            assert chunked == reference, (distance, chunk_size)
            chunked_pairs = pair_retrieval_metrics(
                embeddings, pairs, None, 3, distance=distance, chunk_size=chunk_size
            )
            assert chunked_pairs == reference_pairs, (distance, chunk_size)
    # and equal distances are ranked by index, as the plain-loop oracle does
    gains = (groups[:, None] == groups[None, :]).double()
    exact = (embeddings * 3).double()
    expected = slow_oracle(torch.cdist(exact, exact, p=1), gains, (1, 7))
    ours = retrieval_metrics(embeddings, groups, (1, 7), distance="manhattan", chunk_size=9)
    for name, value in expected.items():
        assert ours[name].item() == pytest.approx(value, abs=1e-6), name


def test_ranked_topk_orders_ties_by_index_across_the_cut():
    keys = torch.tensor([[2.0, 1.0, 1.0, 0.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]])
    assert ranked_topk(keys, 3).tolist() == [[3, 1, 2], [0, 1, 2]]
    assert ranked_topk(keys, 6).tolist() == [[3, 1, 2, 4, 5, 0], [0, 1, 2, 3, 4, 5]]


def test_queries_without_relevant_items_are_left_out():
    # group 7 has a single member: it is not a query of any average (PML does the same)
    groups = torch.tensor([0, 0, 7, 1, 1])
    embeddings = torch.tensor([[0.0], [1.0], [0.5], [5.0], [6.0]])
    result = retrieval_metrics(embeddings, groups, 1, distance=Distance.EUCLIDEAN)
    assert result["precision@1"].item() == 0.5  # q0 -> 2 (miss), q1 -> 2 (miss), q3, q4 hit
    scores = dense_query_scores(
        torch.tensor([[0.0, 1.0], [1.0, 0.0]]), torch.tensor([[0.0, 1.0], [0.0, 0.0]])
    )
    assert scores.has_relevant.tolist() == [True, False]
    assert scores.scored("mrr").tolist() == [0.5]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"k": 5}, "k=5 is larger than the 4 candidates"),
        ({"k": 0}, "k must be greater than 0"),
        ({"k": (1, -2)}, "k must be greater than 0"),
        ({"k": 1.5}, "positive int"),
        ({"groups": torch.tensor([0, 0, 1])}, "one label per embedding"),
        ({"groups": torch.tensor([0, 1, 2, 3, 4])}, "every group has a single member"),
        ({"chunk_size": 0}, "chunk_size must be an int of at least 1"),
        ({"distance": "cosinus"}, "Unrecognized distance name: cosinus"),
        ({"query_indices": torch.tensor([0, 9])}, "query_indices must be"),
        ({"query_embeddings": torch.zeros(2, 1)}, "needs query_groups"),
        ({"query_groups": torch.zeros(2)}, "only used with query_embeddings"),
    ],
)
def test_bad_group_input(kwargs, message):
    arguments = {"groups": torch.tensor([0, 1, 0, 1, 0]), "k": 1, **kwargs}
    with pytest.raises(ValueError, match=message):
        retrieval_metrics(LINE, **arguments)


@pytest.mark.parametrize(
    "embeddings, pairs, scores, message",
    [
        (LINE, torch.tensor([0, 1]), None, r"shape \[P, 2\]"),
        (LINE, torch.tensor([[0, 5]]), None, r"pairs\[:, 1\] must index the 5 embeddings"),
        (LINE, torch.tensor([[0, 1]]), torch.tensor([1.0, 1.0]), "one value per pair"),
        (LINE, torch.tensor([[0, 1]]), torch.tensor([0.0]), "no pair has a positive score"),
        (LINE.long(), torch.tensor([[0, 1]]), None, "floating point"),
        (torch.tensor([[0.0], [float("nan")]]), torch.tensor([[0, 1]]), None, "NaN"),
    ],
)
def test_bad_pair_input(embeddings, pairs, scores, message):
    with pytest.raises(ValueError, match=message):
        pair_retrieval_metrics(embeddings, pairs, scores)


def test_bad_dense_input():
    with pytest.raises(ValueError, match="same shape"):
        dense_query_scores(torch.zeros(3, 4), torch.zeros(3, 3))
    with pytest.raises(ValueError, match="k=5 is larger than the 4 candidates"):
        dense_query_scores(torch.zeros(3, 4), torch.ones(3, 4), 5)


def test_thread_count_is_restored():
    threads = torch.get_num_threads()
    retrieval_metrics(LINE, torch.tensor([0, 1, 0, 1, 0]), 2)
    assert torch.get_num_threads() == threads


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_counting_with_numpy_equals_torch(dtype):
    # the rank of a candidate beyond the top list: keys below a row's window are counted, keys
    # inside it listed; numpy (faster on a CPU) and torch must give the same, ties and inf too
    generator = torch.Generator().manual_seed(9)
    keys = torch.randint(0, 6, (7, 50), generator=generator).to(dtype) / 4
    keys[0, 3] = keys[2, :5] = torch.inf  # excluded columns
    key = keys[:, 10].clone()
    low, high = (key - 0.25)[:, None], (key + 0.25)[:, None]
    by_numpy = ranking.below_and_near(keys, low, high, use_numpy=True)
    by_torch = ranking.below_and_near(keys, low, high, use_numpy=False)
    before = (keys < low).sum(dim=1)
    near = ((keys >= low) & (keys <= high)).nonzero(as_tuple=True)
    for result in (by_numpy, by_torch):
        assert result[0].dtype == torch.long
        assert torch.equal(result[0], before)
        assert torch.equal(result[1], near[0]) and torch.equal(result[2], near[1])
