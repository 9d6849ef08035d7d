"""The original metric classes: §10.2 values, accumulation, the fixed bugs, the dict-valued
engine metrics and their agreement with the dense path."""

import pytest
import torch

from quaterion.distances import Distance
from quaterion.eval.accumulators import GroupAccumulator, PairAccumulator
from quaterion.eval.group import GroupRetrievalMetrics, RetrievalRPrecision
from quaterion.eval.group.retrieval_r_precision import retrieval_r_precision
from quaterion.eval.pair import (
    PairRetrievalMetrics,
    RetrievalPrecision,
    RetrievalReciprocalRank,
    retrieval_reciprocal_rank,
)

PAIRS = torch.LongTensor([[0, 2], [1, 3]])
LABELS = torch.Tensor([1, 1])
SUBGROUPS = torch.zeros(4)
GROUPS = torch.LongTensor([1, 2, 1, 2])


@pytest.mark.parametrize(
    "embeddings, k, expected",
    [
        ([[1, 1], [8, 8], [4, 4], [6, 7]], 1, [1, 1, 0, 1]),
        ([[1, 1], [8, 8], [4, 4], [6, 7]], 2, [0.5, 0.5, 0.5, 0.5]),
        ([[1, 1], [8, 8], [2, 2], [6, 6]], 1, [1, 1, 1, 1]),
        ([[1, 1], [2, 2], [8, 8], [6, 6]], 1, [0, 0, 0, 0]),
    ],
)
def test_retrieval_precision(embeddings, k, expected):
    metric = RetrievalPrecision(k=k, distance_metric_name=Distance.MANHATTAN, reduce_func=None)
    values = metric.compute(torch.Tensor(embeddings), LABELS, PAIRS, SUBGROUPS)
    assert values.tolist() == expected


def test_retrieval_precision_accumulates_batches_and_checks_k():
    metric = RetrievalPrecision(k=1, distance_metric_name=Distance.MANHATTAN)
    embeddings = torch.Tensor([[1, 1], [8, 8], [4, 4], [6, 7]])
    metric.update(embeddings, LABELS, PAIRS, SUBGROUPS)
    metric.update(embeddings + 100, LABELS, PAIRS, SUBGROUPS)
    assert metric.accumulator.pairs.tolist() == [[0, 2], [1, 3], [4, 6], [5, 7]]
    assert metric.evaluate().item() == pytest.approx(0.75)
    metric.reset()
    assert metric.accumulator.embeddings.numel() == 0
    with pytest.raises(ValueError, match="k must be greater than 0"):
        RetrievalPrecision(k=0)


def test_retrieval_precision_on_random_data_prefers_close_pairs():
    generator = torch.Generator().manual_seed(0)
    anchors = torch.randn(64, 8, generator=generator)
    pairs = torch.stack([torch.arange(64), torch.arange(64, 128)], dim=1)
    scores = torch.ones(64)
    near = torch.cat([anchors, anchors + 0.01 * torch.randn(64, 8, generator=generator)])
    far = torch.cat([anchors, torch.randn(64, 8, generator=generator)])
    metric = RetrievalPrecision(k=1)
    assert metric.compute(near, scores, pairs, torch.zeros(128)).item() == 1.0
    assert metric.compute(far, scores, pairs, torch.zeros(128)).item() < 0.5


@pytest.mark.parametrize(
    "embeddings, expected",
    [
        ([[1, 1], [8, 8], [4, 4], [6, 7]], [1, 1, 0.5, 1]),
        ([[1, 1], [8, 8], [4, 4], [9, 9]], [1, 1, 1, 1]),
    ],
)
def test_retrieval_reciprocal_rank(embeddings, expected):
    metric = RetrievalReciprocalRank(Distance.MANHATTAN, reduce_func=None)
    assert metric.compute(torch.Tensor(embeddings), LABELS, PAIRS, SUBGROUPS).tolist() == expected


def test_retrieval_reciprocal_rank_mean():
    metric = RetrievalReciprocalRank(Distance.MANHATTAN)
    embeddings = torch.Tensor([[3, -1], [2, -3], [0, -3], [0, -1]])
    assert metric.compute(embeddings, LABELS, PAIRS, SUBGROUPS).item() == pytest.approx(1 / 3)


def test_reciprocal_rank_is_one_value_per_query():
    # relevant columns at ranks {1, 2}, {1}, {}, {3}: the original gave [1, .5, 1, 1/3]
    distances = torch.Tensor([[0, 1, 2, 3], [0, 1, 2, 3], [0, 1, 2, 3], [0, 1, 2, 3]])
    labels = torch.Tensor([[1, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0]])
    assert retrieval_reciprocal_rank(distances, labels).tolist() == pytest.approx([1, 1, 1 / 3])


@pytest.mark.parametrize(
    "embeddings, expected",
    [
        ([[1, 1], [8, 8], [4, 4], [6, 7]], 0.75),
        ([[1, 1], [8, 8], [2, 2], [6, 6]], 1.0),
        ([[1, 1], [2, 2], [8, 8], [6, 6]], 0.0),
    ],
)
def test_retrieval_r_precision(embeddings, expected):
    metric = RetrievalRPrecision(Distance.MANHATTAN)
    assert metric.compute(torch.Tensor(embeddings), GROUPS).item() == pytest.approx(expected)


def test_retrieval_r_precision_accumulated_in_two_batches():
    metric = RetrievalRPrecision(Distance.MANHATTAN)
    embeddings = torch.Tensor([[1, 1], [8, 8], [4, 4], [6, 7]])
    metric.update(embeddings[:2], GROUPS[:2])
    metric.update(embeddings[2:], GROUPS[2:])
    assert metric.evaluate().item() == pytest.approx(0.75)


def test_r_precision_is_the_mean_of_per_query_values():
    # row 0: R=3, 3 of its 3 nearest relevant -> 1; row 1: R=1, nearest not relevant -> 0.
    # The original divided totals: (3 + 0) / (3 + 1) = 0.75.
    distances = torch.Tensor([[0, 1, 2, 3], [0, 1, 2, 3]])
    labels = torch.Tensor([[1, 1, 1, 0], [0, 0, 0, 1]])
    assert retrieval_r_precision(distances, labels).item() == pytest.approx(0.5)


def test_accumulators_keep_detached_batches_and_shift_pairs():
    groups = GroupAccumulator()
    embeddings = torch.ones(2, 3, requires_grad=True)
    groups.update(embeddings, torch.tensor([0, 1]))
    groups.update(embeddings * 2, torch.tensor([1, 2]))
    assert groups.state["embeddings"].shape == (4, 3)
    assert not groups.embeddings.requires_grad
    assert groups.groups.tolist() == [0, 1, 1, 2]
    pairs = PairAccumulator()
    assert pairs.pairs.dtype == torch.long and pairs.pairs.numel() == 0
    pairs.update(torch.zeros(4, 2), torch.ones(2), PAIRS, torch.zeros(4))
    pairs.update(torch.zeros(2, 2), torch.ones(1), torch.LongTensor([[0, 1]]), torch.zeros(2))
    assert pairs.state["pairs"].tolist() == [[0, 2], [1, 3], [4, 5]]
    assert pairs.state["subgroups"].shape == (6,)
    pairs.set_filled()
    assert pairs.filled
    pairs.reset()
    assert not pairs.filled and pairs.pairs.numel() == 0


def test_engine_metrics_equal_their_dense_form():
    generator = torch.Generator().manual_seed(1)
    groups = torch.randint(0, 8, (60,), generator=generator)
    embeddings = torch.randn(8, 5, generator=generator)[groups] + torch.randn(60, 5)
    metric = GroupRetrievalMetrics(k=(1, 3), distance_metric_name=Distance.EUCLIDEAN, chunk_size=7)
    chunked = metric.compute(embeddings, groups)
    labels, distance_matrix = metric.precompute(embeddings, groups=groups)
    dense = metric.raw_compute(distance_matrix, labels)
    assert chunked.keys() == dense.keys()
    for name in chunked:
        assert chunked[name].item() == pytest.approx(dense[name].item(), abs=1e-6), name
    # the R-precision of the engine is the one RetrievalRPrecision reports
    r_precision = RetrievalRPrecision(Distance.EUCLIDEAN).compute(embeddings, groups)
    assert chunked["r_precision"].item() == pytest.approx(r_precision.item(), abs=1e-6)
    with pytest.raises(ValueError, match="k must be greater than 0"):
        GroupRetrievalMetrics(k=0)


def test_pair_engine_metrics_match_the_pair_classes():
    embeddings = torch.Tensor([[1, 1], [8, 8], [4, 4], [6, 7]])
    metric = PairRetrievalMetrics(k=1, distance_metric_name=Distance.MANHATTAN)
    metric.update(embeddings, LABELS, PAIRS, SUBGROUPS)
    result = metric.evaluate()
    assert result["precision@1"].item() == pytest.approx(0.75)
    assert result["mrr"].item() == pytest.approx((1 + 1 + 0.5 + 1) / 4)
