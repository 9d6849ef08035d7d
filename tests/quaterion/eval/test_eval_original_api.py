"""The original metric classes and samplers are adapters over the chunked engine: on a dataset
they equal the engine and pytorch-metric-learning, build no dense matrix, and agree with the
metric sets on per-query averaging."""

import random

import pytest
import torch
from pytorch_metric_learning.distances import CosineSimilarity, LpDistance
from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
from pytorch_metric_learning.utils.inference import CustomKNN
from support import VectorEncoder

from quaterion.dataset import SimilarityGroupSample, SimilarityPairSample
from quaterion.distances import Cosine, Distance, Euclidean
from quaterion.eval.evaluator import Evaluator
from quaterion.eval.group import RetrievalRPrecision
from quaterion.eval.pair import PairRetrievalMetrics, RetrievalPrecision, RetrievalReciprocalRank
from quaterion.eval.retrieval import pair_retrieval_metrics, retrieval_metrics
from quaterion.eval.samplers.group_sampler import GroupSampler
from quaterion.eval.samplers.pair_sampler import PairSampler
from quaterion_models import SimilarityModel
from quaterion_models.heads import EmptyHead


def model_of(dim: int) -> SimilarityModel:
    return SimilarityModel(encoders=VectorEncoder(dim), head=EmptyHead(dim))


def original_metrics(distance: Distance) -> dict:
    return {
        "r_precision": RetrievalRPrecision(distance),
        "precision@1": RetrievalPrecision(k=1, distance_metric_name=distance),
        "mrr": RetrievalReciprocalRank(distance),
    }


@pytest.mark.parametrize(
    "distance, pml_distance",
    [
        (Distance.COSINE, CosineSimilarity()),
        (Distance.EUCLIDEAN, LpDistance(normalize_embeddings=False)),
    ],
)
def test_group_evaluator_equals_engine_and_pytorch_metric_learning(distance, pml_distance):
    generator = torch.Generator().manual_seed(5)
    groups = torch.randint(0, 40, (900,), generator=generator)
    groups[:3] = torch.tensor([100, 101, 102])  # singletons: no relevant object, left out
    centres = torch.randn(103, 12, generator=generator, dtype=torch.float64)
    embeddings = centres[groups] + torch.randn(900, 12, generator=generator, dtype=torch.float64)
    dataset = [
        SimilarityGroupSample(obj=row, group=int(group))
        for row, group in zip(embeddings, groups, strict=True)
    ]
    sampler = GroupSampler(sample_size=-1, encode_batch_size=128, log_progress=False)
    result = Evaluator(original_metrics(distance), sampler).evaluate(dataset, model_of(12))

    engine = retrieval_metrics(embeddings, groups, 1, distance=distance)
    pml = AccuracyCalculator(
        include=("precision_at_1", "r_precision", "mean_reciprocal_rank"),
        k=None,  # the whole ranking, so the reciprocal rank is never cut off
        knn_func=CustomKNN(pml_distance),
        device=torch.device("cpu"),
    ).get_accuracy(embeddings, groups, embeddings, groups, ref_includes_query=True)
    pml_names = {
        "precision@1": "precision_at_1",
        "r_precision": "r_precision",
        "mrr": "mean_reciprocal_rank",
    }
    for name, pml_name in pml_names.items():
        assert result[name].item() == pytest.approx(engine[name].item(), abs=1e-12), name
        assert result[name].item() == pytest.approx(pml[pml_name], abs=1e-6), name


def pair_dataset(num_pairs: int, seed: int) -> tuple[list, torch.Tensor, torch.Tensor]:
    """Pairs whose obj_b is near obj_a, a quarter of them dissimilar (score 0) and some 0.5."""
    generator = torch.Generator().manual_seed(seed)
    anchors = torch.randn(num_pairs, 6, generator=generator)
    others = anchors + 0.8 * torch.randn(num_pairs, 6, generator=generator)
    scores = torch.ones(num_pairs)
    scores[: num_pairs // 4] = 0.0
    scores[num_pairs // 4 : num_pairs // 3] = 0.5
    samples = [
        SimilarityPairSample(obj_a=a, obj_b=b, score=float(s))
        for a, b, s in zip(anchors, others, scores, strict=True)
    ]
    return samples, torch.cat([anchors, others]), scores


def test_pair_evaluator_equals_engine_and_the_metric_set():
    samples, _, _ = pair_dataset(296, seed=2)
    metrics = {
        **original_metrics(Distance.COSINE),
        "set": PairRetrievalMetrics(k=(1, 3), distance_metric_name=Distance.COSINE),
        "p3": RetrievalPrecision(k=3),
    }
    # encode chunks of 16 objects = 8 pairs: embeddings are laid out a0..a7 b0..b7 a8..a15 ...
    sampler = PairSampler(encode_batch_size=16, log_progress=False)
    result = Evaluator(metrics, sampler).evaluate(samples, model_of(6))
    chunks = [samples[start : start + 8] for start in range(0, 296, 8)]
    embeddings = torch.stack(
        [row for chunk in chunks for row in [s.obj_a for s in chunk] + [s.obj_b for s in chunk]]
    )
    pairs = torch.tensor(
        [[16 * c + i, 16 * c + 8 + i] for c in range(len(chunks)) for i in range(8)]
    )
    scores = torch.tensor([s.score for s in samples])
    engine = pair_retrieval_metrics(embeddings, pairs, scores, (1, 3))
    for name in ("precision@1", "mrr", "r_precision"):
        assert result[name].item() == pytest.approx(engine[name].item(), abs=1e-6), name
    # queries whose pairs all score 0 count in neither: RetrievalPrecision == the metric set
    assert result["precision@1"].item() == pytest.approx(result["set/precision@1"].item())
    assert result["p3"].item() == pytest.approx(result["set/precision@3"].item())
    assert result["mrr"].item() == pytest.approx(result["set/mrr"].item())


def test_precision_agrees_with_the_metric_set_on_sampled_queries_and_batches():
    samples, embeddings, scores = pair_dataset(40, seed=4)
    pairs = torch.stack([torch.arange(40), torch.arange(40, 80)], dim=1)
    for k in (1, 2, 5):
        batch_value = RetrievalPrecision(k=k).compute(embeddings, scores, pairs, None)
        batch_set = PairRetrievalMetrics(k=k).compute(embeddings, scores, pairs)
        assert batch_value.item() == pytest.approx(batch_set[f"precision@{k}"].item())
        random.seed(k)
        sampler = PairSampler(sample_size=30, log_progress=False)
        evaluator = Evaluator(
            {"p": RetrievalPrecision(k=k), "set": PairRetrievalMetrics(k=k)}, sampler
        )
        result = evaluator.evaluate(samples, model_of(6))
        assert result["p"].item() == pytest.approx(result[f"set/precision@{k}"].item())


def test_dataset_path_builds_no_dense_matrix(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a dense distance matrix was built")

    for distance in (Cosine, Euclidean):
        monkeypatch.setattr(distance, "distance_matrix", staticmethod(refuse))
    samples, _, _ = pair_dataset(64, seed=1)
    result = Evaluator(original_metrics(Distance.COSINE), PairSampler(log_progress=False)).evaluate(
        samples, model_of(6)
    )
    assert 0 < result["mrr"].item() <= 1
    groups = [SimilarityGroupSample(obj=s.obj_a, group=i % 5) for i, s in enumerate(samples)]
    result = Evaluator(original_metrics(Distance.EUCLIDEAN), GroupSampler(log_progress=False))
    assert 0 <= result.evaluate(groups, model_of(6))["r_precision"].item() <= 1


def test_batch_compute_equals_raw_compute_on_the_original_matrices():
    generator = torch.Generator().manual_seed(9)
    groups = torch.randint(0, 6, (50,), generator=generator)
    embeddings = torch.randn(50, 4, generator=generator, dtype=torch.float64)
    metric = RetrievalRPrecision(Distance.EUCLIDEAN)
    labels, distance_matrix = metric.precompute(embeddings, groups=groups)
    assert metric.compute(embeddings, groups).item() == pytest.approx(
        metric.raw_compute(distance_matrix, labels).item(), abs=1e-12
    )


def test_evaluator_ranks_once_for_all_metrics_of_a_distance(monkeypatch):
    import quaterion.eval.evaluator as evaluator_module

    calls = []
    real = evaluator_module.score_queries

    def counting(inputs, k, **kwargs):
        calls.append((tuple(k), kwargs["distance"]))
        return real(inputs, k, **kwargs)

    monkeypatch.setattr(evaluator_module, "score_queries", counting)
    samples, _, _ = pair_dataset(32, seed=3)
    metrics = {**original_metrics(Distance.COSINE), "p4": RetrievalPrecision(k=4)}
    metrics["l1"] = RetrievalReciprocalRank(Distance.MANHATTAN)
    result = Evaluator(metrics, PairSampler(log_progress=False)).evaluate(samples, model_of(6))
    assert sorted(calls) == [((1,), "manhattan"), ((1, 1, 1, 4), "cosine")]
    assert set(result) == {"r_precision", "precision@1", "mrr", "p4", "l1"}
