"""Loss bases, the public import surface and the pytorch-metric-learning wrapper."""

import json
import sys

import pytest
import torch
from pytorch_metric_learning import losses, miners

import quaterion.loss as loss_module
from quaterion.distances import Distance, Euclidean
from quaterion.loss import GroupLoss, PairwiseLoss, SimilarityLoss
from quaterion.loss.extras import PytorchMetricLearningWrapper

ALL_LOSSES = [
    "ArcFaceLoss",
    "CenterLoss",
    "CircleLoss",
    "ContrastiveLoss",
    "CosFaceLoss",
    "FastAPLoss",
    "GroupLoss",
    "MultipleNegativesRankingLoss",
    "OnlineContrastiveLoss",
    "PairwiseLoss",
    "SimilarityLoss",
    "SoftmaxLoss",
    "TripletLoss",
]


def test_public_names_and_module_paths():
    assert sorted(loss_module.__all__) == ALL_LOSSES
    from quaterion.loss.arcface_loss import ArcFaceLoss  # noqa: F401
    from quaterion.loss.cos_face_loss import CosFaceLoss  # noqa: F401
    from quaterion.loss.fast_ap_loss import FastAPLoss  # noqa: F401
    from quaterion.loss.multiple_negatives_ranking_loss import (  # noqa: F401
        MultipleNegativesRankingLoss,
    )

    assert not hasattr(loss_module, "PytorchMetricLearningWrapper")


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("ContrastiveLoss", {}),
        ("MultipleNegativesRankingLoss", {}),
        ("OnlineContrastiveLoss", {}),
        ("TripletLoss", {}),
        ("CircleLoss", {}),
        ("FastAPLoss", {}),
        ("SoftmaxLoss", {"embedding_size": 3, "num_groups": 2}),
        ("ArcFaceLoss", {"embedding_size": 3, "num_groups": 2}),
        ("CosFaceLoss", {"embedding_size": 3, "num_groups": 2}),
        ("CenterLoss", {"embedding_size": 3, "num_groups": 2}),
    ],
)
def test_every_config_dict_is_json_and_rebuilds_the_loss(name, kwargs):
    cls = getattr(loss_module, name)
    config = cls(**kwargs).get_config_dict()
    restored = json.loads(json.dumps(config))
    assert cls(**restored).get_config_dict() == config
    assert set(kwargs) <= set(config)


def test_base_classes():
    loss = SimilarityLoss(distance_metric_name="euclidean")
    assert loss.distance_metric is Euclidean and loss.distance_metric_name == Distance.EUCLIDEAN
    assert SimilarityLoss().get_config_dict() == {"distance_metric_name": "cosine"}
    with pytest.raises(NotImplementedError):
        PairwiseLoss()(torch.zeros(2, 2), torch.tensor([[0, 1]]), torch.ones(1), torch.zeros(2))
    with pytest.raises(NotImplementedError):
        GroupLoss()(torch.zeros(2, 2), torch.zeros(2))


def test_wrapper_equals_the_wrapped_loss_and_miner():
    gen = torch.Generator().manual_seed(0)
    embeddings = torch.randn(16, 4, generator=gen)
    groups = torch.randint(0, 3, (16,), generator=gen)
    loss, miner = losses.TripletMarginLoss(margin=0.3), miners.MultiSimilarityMiner()
    wrapped = PytorchMetricLearningWrapper(loss, miner)
    expected = loss(embeddings, groups, miner(embeddings, groups))
    assert wrapped(embeddings=embeddings, groups=groups).item() == pytest.approx(expected.item())
    assert PytorchMetricLearningWrapper(loss)(embeddings, groups).item() == pytest.approx(
        loss(embeddings, groups).item()
    )
    memory, memory_groups = torch.randn(8, 4, generator=gen), torch.arange(8) % 3
    xbm = wrapped.xbm_loss(embeddings, groups, memory, memory_groups)
    indices = miner(embeddings, groups, memory, memory_groups)
    assert xbm.item() == pytest.approx(
        loss(embeddings, groups, indices, memory, memory_groups).item()
    )
    assert wrapped.get_config_dict() == {
        "loss": "pytorch_metric_learning.losses.triplet_margin_loss.TripletMarginLoss",
        "miner": "pytorch_metric_learning.miners.multi_similarity_miner.MultiSimilarityMiner",
    }


def test_wrapper_without_pytorch_metric_learning_names_the_package(monkeypatch):
    loss = losses.TripletMarginLoss()
    monkeypatch.setitem(sys.modules, "pytorch_metric_learning", None)
    with pytest.raises(ImportError, match="pip install pytorch-metric-learning"):
        PytorchMetricLearningWrapper(loss)
