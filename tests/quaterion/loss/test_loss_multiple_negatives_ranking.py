"""MultipleNegativesRankingLoss against a loop oracle, pml NT-Xent and reference values."""

import json
import math

import pytest
import torch
from pytorch_metric_learning import losses

from quaterion.loss import MultipleNegativesRankingLoss

E6 = [[0, -1, 0.5], [0.1, 2, 0.5], [0, 0.3, 0.2], [1, 0, 0.9], [1.2, -1.2, 0.01], [-0.7, 0, 1.5]]
PAIRS = torch.tensor([[0, 3], [1, 4], [2, 5]])
EMPTY = torch.empty(0)
TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-10}


def cosine_matrix_similarity(u, v):  # the cosine similarity_matrix scale: (cos + 1) / 2
    dot = sum(a * b for a, b in zip(u, v, strict=True))
    cos = dot / (math.sqrt(sum(a * a for a in u)) * math.sqrt(sum(b * b for b in v)))
    return (cos + 1) / 2


def dot_similarity(u, v):
    return sum(a * b for a, b in zip(u, v, strict=True))


def cross_entropy(logits, target):
    return -logits[target] + math.log(sum(math.exp(x) for x in logits))


def oracle(embeddings, pairs, scale, similarity, symmetric):
    rows = embeddings.tolist()
    anchors = [rows[a] for a, _ in pairs.tolist()]
    positives = [rows[b] for _, b in pairs.tolist()]
    n = len(anchors)
    logits = [[scale * similarity(anchors[i], positives[j]) for j in range(n)] for i in range(n)]
    loss = sum(cross_entropy(logits[i], i) for i in range(n)) / n
    if symmetric:
        columns = [[logits[i][j] for i in range(n)] for j in range(n)]
        loss = (loss + sum(cross_entropy(columns[j], j) for j in range(n)) / n) / 2
    return loss


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    ("kwargs", "similarity"),
    [
        ({}, cosine_matrix_similarity),
        ({"symmetric": True, "scale": 7.0}, cosine_matrix_similarity),
        ({"distance_metric_name": "dot_product", "scale": 1.0}, dot_similarity),
    ],
)
def test_matches_loop_oracle(dtype, kwargs, similarity):
    embeddings = torch.tensor(E6, dtype=dtype)
    loss = MultipleNegativesRankingLoss(**kwargs)
    value = loss(embeddings=embeddings, pairs=PAIRS, labels=EMPTY, subgroups=EMPTY)
    expected = oracle(embeddings, PAIRS, loss.scale, similarity, kwargs.get("symmetric", False))
    assert value.dtype == dtype and value.dim() == 0
    assert value.item() == pytest.approx(expected, rel=TOLERANCE[dtype])


def test_reference_values():
    embeddings = torch.tensor(E6)
    default = MultipleNegativesRankingLoss()(embeddings, PAIRS, EMPTY, EMPTY)
    dot = MultipleNegativesRankingLoss(scale=1, distance_metric_name="dot_product")
    symmetric = MultipleNegativesRankingLoss(symmetric=True)
    assert default.item() == pytest.approx(4.299083, abs=1e-5)
    assert dot(embeddings, PAIRS, EMPTY, EMPTY).item() == pytest.approx(1.996379, abs=1e-5)
    assert symmetric(embeddings, PAIRS, EMPTY, EMPTY).item() == pytest.approx(4.554350, abs=1e-5)


@pytest.mark.parametrize("symmetric", [False, True])
def test_equals_ntxent_with_temperature_two_over_scale(symmetric):
    # (cos + 1) / 2 * scale differs from cos / (2 / scale) by a constant per row: same softmax.
    gen = torch.Generator().manual_seed(0)
    num_pairs, scale = 8, 20.0
    embeddings = torch.randn(2 * num_pairs, 6, generator=gen, dtype=torch.float64)
    pairs = torch.stack([torch.arange(num_pairs), torch.arange(num_pairs, 2 * num_pairs)], 1)
    ours = MultipleNegativesRankingLoss(scale=scale, symmetric=symmetric)
    value = ours(embeddings, pairs, torch.ones(num_pairs), torch.zeros(2 * num_pairs))
    anchors, positives = pairs[:, 0], pairs[:, 1]
    direction = torch.zeros(num_pairs)
    if symmetric:  # the second direction ranks anchors for each positive
        anchors, positives = torch.cat([anchors, positives]), torch.cat([positives, anchors])
        direction = torch.cat([direction, torch.ones(num_pairs)])
    # negatives of anchor i: the positives of every other anchor of the same direction
    other = (anchors.unsqueeze(1) != anchors.unsqueeze(0)) & (
        direction.unsqueeze(1) == direction.unsqueeze(0)
    )  # (A, A)
    neg_anchor, neg_column = other.nonzero(as_tuple=True)
    indices = (anchors, positives, anchors[neg_anchor], positives[neg_column])
    expected = losses.NTXentLoss(temperature=2 / scale)(embeddings, None, indices)
    assert value.item() == pytest.approx(expected.item(), rel=1e-9)


def test_labels_must_all_be_positive():
    embeddings = torch.tensor(E6)
    loss = MultipleNegativesRankingLoss()
    assert loss(embeddings, PAIRS, torch.ones(3), EMPTY).item() == pytest.approx(4.299083, abs=1e-5)
    with pytest.raises(ValueError, match="every pair as positive.*ContrastiveLoss"):
        loss(embeddings, PAIRS, torch.zeros(3), EMPTY)
    with pytest.raises(ValueError, match="1 of 3 labels"):
        loss(embeddings, PAIRS, torch.tensor([1.0, 0.0, 1.0]), EMPTY)


def test_bad_pairs_raise_value_error():
    with pytest.raises(ValueError, match="pairs index rows"):
        MultipleNegativesRankingLoss()(torch.tensor(E6), torch.tensor([[0, 6]]), EMPTY, EMPTY)


def test_config_dict_round_trips_through_json():
    loss = MultipleNegativesRankingLoss(
        scale=5.0, distance_metric_name="dot_product", symmetric=True
    )
    config = json.loads(json.dumps(loss.get_config_dict()))
    assert config == {
        "scale": 5.0,
        "distance_metric_name": "dot_product",
        "symmetric": True,
        "distributed": False,
    }
    assert MultipleNegativesRankingLoss(**config).get_config_dict() == config
