"""Samplers and Evaluator: §10.2 values, the fixed self-match and distinguish bugs, the
engine-backed path and Quaterion.evaluate."""

import random

import pytest
import torch
from torch import Tensor

from quaterion import Quaterion
from quaterion.dataset import SimilarityGroupSample, SimilarityPairSample
from quaterion.distances import Distance
from quaterion.eval.evaluator import Evaluator
from quaterion.eval.group import GroupRetrievalMetrics, RetrievalRPrecision
from quaterion.eval.pair import PairRetrievalMetrics, RetrievalReciprocalRank
from quaterion.eval.samplers.group_sampler import GroupSampler
from quaterion.eval.samplers.pair_sampler import PairSampler
from quaterion_models import SimilarityModel
from quaterion_models.encoders import Encoder
from quaterion_models.heads import EmptyHead


def to_tensor(batch: list) -> Tensor:
    return torch.Tensor(batch)


class DummyEncoder(Encoder):
    """Records are 3-d points; the embedding is the point itself."""

    @property
    def trainable(self) -> bool:
        return False

    @property
    def embedding_size(self) -> int:
        return 3

    def get_collate_fn(self):
        return to_tensor

    def forward(self, batch: Tensor) -> Tensor:
        return batch


class CountingModel(SimilarityModel):
    """Counts how many records go through ``encode``."""

    encoded = 0

    def encode(self, inputs, *args, **kwargs):
        type(self).encoded += len(inputs)
        return super().encode(inputs, *args, **kwargs)


@pytest.fixture
def model():
    return CountingModel(encoders=DummyEncoder(), head=EmptyHead(3))


PAIR_DATA = [
    SimilarityPairSample(obj_a=[v, v, v], obj_b=[v + 1, v + 1, v + 1], score=1.0)
    for v in (1, 5, 8, 11)
]
GROUP_DATA = [
    SimilarityGroupSample(obj=[v, v, v], group=group)
    for v, group in ((1, 0), (2, 0), (3, 0), (20, 1), (21, 1), (22, 1))
]


@pytest.mark.parametrize(
    "sampler, shape",
    [
        (PairSampler(log_progress=False), (8, 8)),
        (PairSampler(sample_size=4, log_progress=False), (4, 8)),
        (PairSampler(distinguish=True, log_progress=False), (4, 4)),
        (PairSampler(sample_size=4, distinguish=True, log_progress=False), (4, 4)),
    ],
)
def test_pair_sampler(model, sampler, shape):
    metric = RetrievalReciprocalRank(Distance.MANHATTAN)
    labels, distances = sampler.sample(PAIR_DATA, metric, model)
    assert distances.shape == shape and labels.shape == shape
    assert metric.raw_compute(distances, labels).item() == 1.0
    result = Evaluator(metrics={"rrk": metric}, sampler=sampler).evaluate(PAIR_DATA, model)
    assert result == {"rrk": 1.0}


def test_group_sampler_shapes(model):
    metric = RetrievalRPrecision(Distance.MANHATTAN)
    labels, distances = GroupSampler(log_progress=False).sample(GROUP_DATA, metric, model)
    assert distances.shape == labels.shape == (6, 6)
    sampler = GroupSampler(sample_size=4, log_progress=False)
    labels, distances = sampler.sample(GROUP_DATA, metric, model)
    assert distances.shape == labels.shape == (4, 6)


def test_group_sampler_excludes_each_sampled_query_itself(model):
    # The original masked [i, i] instead of [i, idx[i]], so sampled rows could retrieve
    # themselves and perfect data scored 0.5-0.67.
    for seed in range(5):
        random.seed(seed)  # samplers draw queries with Python's random
        sampler = GroupSampler(sample_size=4, encode_batch_size=2, log_progress=False)
        result = Evaluator(RetrievalRPrecision(Distance.MANHATTAN), sampler).evaluate(
            GROUP_DATA, model
        )
        assert result == {"RetrievalRPrecision": 1.0}


def test_distinguish_labels_follow_pairs_across_encode_chunks(model):
    # one pair per encode chunk: embeddings are laid out a0 b0 a1 b1 ..., which the original's
    # label rows (indexed by pair number) got wrong
    sampler = PairSampler(distinguish=True, encode_batch_size=2, log_progress=False)
    evaluator = Evaluator({"rrk": RetrievalReciprocalRank(Distance.MANHATTAN)}, sampler)
    assert evaluator.evaluate(PAIR_DATA, model) == {"rrk": 1.0}


def test_evaluator_encodes_once_and_resets(model):
    sampler = PairSampler(log_progress=False)
    metrics = {
        "rrk": RetrievalReciprocalRank(Distance.MANHATTAN),
        "all": PairRetrievalMetrics(k=(1, 2), distance_metric_name=Distance.MANHATTAN),
    }
    CountingModel.encoded = 0
    result = Quaterion.evaluate(Evaluator(metrics, sampler), PAIR_DATA, model)
    assert CountingModel.encoded == 8
    assert not sampler.accumulator.filled
    assert result["rrk"] == 1.0
    assert result["all/precision@1"] == 1.0 and result["all/recall@2"] == 1.0
    assert set(result) == {"rrk"} | {
        f"all/{name}"
        for name in ("precision@1", "recall@1", "ndcg@1", "precision@2", "recall@2", "ndcg@2")
        + ("r_precision", "map@r", "mrr")
    }


def test_engine_path_equals_dense_path_with_sampled_queries(model):
    generator = torch.Generator().manual_seed(2)
    points = torch.randn(40, 3, generator=generator)
    groups = torch.randint(0, 4, (40,), generator=generator)
    data = [
        SimilarityGroupSample(obj=p.tolist(), group=int(g))
        for p, g in zip(points, groups, strict=True)
    ]
    metric = GroupRetrievalMetrics(k=(1, 5), distance_metric_name=Distance.EUCLIDEAN)
    sampler = GroupSampler(sample_size=15, encode_batch_size=8, log_progress=False)
    random.seed(7)
    chunked = Evaluator(metric, sampler).evaluate(data, model)
    random.seed(7)
    labels, distances = sampler.sample(data, metric, model)
    dense = metric.raw_compute(distances, labels)
    assert chunked.keys() == dense.keys()
    for name in dense:
        assert chunked[name].item() == pytest.approx(dense[name].item(), abs=1e-6), name


def test_distinguish_engine_path(model):
    sampler = PairSampler(distinguish=True, encode_batch_size=2, log_progress=False)
    metric = PairRetrievalMetrics(k=(1, 4), distance_metric_name=Distance.MANHATTAN)
    result = Evaluator(metric, sampler).evaluate(PAIR_DATA, model)
    assert result["precision@1"] == 1.0 and result["mrr"] == 1.0
    assert result["precision@4"] == 0.25


@pytest.mark.parametrize(
    "sampler", [GroupSampler(log_progress=False), PairSampler(log_progress=False)]
)
def test_empty_dataset_is_refused(model, sampler):
    with pytest.raises(ValueError, match="cannot evaluate an empty dataset"):
        Evaluator(RetrievalRPrecision(), sampler).evaluate([], model)


@pytest.mark.parametrize(
    "metric", [RetrievalRPrecision(), GroupRetrievalMetrics(k=1)], ids=["dense", "engine"]
)
def test_groups_of_one_are_refused_by_the_evaluator(model, metric):
    singletons = [SimilarityGroupSample(obj=[v, v, v], group=v) for v in range(4)]
    with pytest.raises(ValueError, match="every group has a single member"):
        Evaluator(metric, GroupSampler(log_progress=False)).evaluate(singletons, model)
    # batch-wise (as an attached metric during training) it stays NaN instead of failing
    embeddings = torch.Tensor([[v, v, v] for v in range(4)])
    assert RetrievalRPrecision().compute(embeddings, torch.arange(4)).isnan()


def test_group_sampler_takes_any_hashable_label_and_scores_like_integer_ids(model):
    names = {0: "cat", 1: ("dog", 2)}  # labels compared for equality only
    named = [SimilarityGroupSample(obj=s.obj, group=names[s.group]) for s in GROUP_DATA]
    mixed = [
        SimilarityGroupSample(obj=s.obj, group=torch.tensor(s.group) if i % 2 else s.group)
        for i, s in enumerate(GROUP_DATA)
    ]  # a 0-dim tensor counts as its integer
    scores = [
        Quaterion.evaluate(
            Evaluator(
                RetrievalRPrecision("euclidean"),
                GroupSampler(encode_batch_size=2, log_progress=False),
            ),
            data,
            model,
        )["RetrievalRPrecision"]
        for data in (GROUP_DATA, named, mixed)
    ]
    assert float(scores[0]) == pytest.approx(1.0)
    assert [float(score) for score in scores] == [float(scores[0])] * 3
