"""ContrastiveLoss against a plain-loop oracle, pytorch-metric-learning and reference values."""

import math

import pytest
import torch
from pytorch_metric_learning import distances, losses, reducers

from quaterion.loss import ContrastiveLoss

E4 = [[0, 1, 0.5], [0.1, 2, 0], [0, 0.5, 0], [1, 0, 0]]
PAIRS = torch.tensor([[0, 2], [1, 3]])
LABELS = torch.tensor([1.0, 0.0])
TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-10}


def cosine_distance(u, v):
    dot = sum(a * b for a, b in zip(u, v, strict=True))
    return 1 - dot / (math.sqrt(sum(a * a for a in u)) * math.sqrt(sum(b * b for b in v)))


def euclidean_distance(u, v):  # torch.pairwise_distance adds eps=1e-6 to every difference
    return math.sqrt(sum((a - b + 1e-6) ** 2 for a, b in zip(u, v, strict=True)))


def oracle(embeddings, pairs, labels, subgroups, margin, size_average, distance):
    rows, subgroups = embeddings.tolist(), subgroups.tolist()
    losses_ = []
    for (a, b), y in zip(pairs.tolist(), labels.tolist(), strict=True):
        d = distance(rows[a], rows[b])
        loss = 0.5 * (y * d * d + (1 - y) * max(margin - d, 0) ** 2)
        if len(set(subgroups)) > 1:
            for k in (a, b):
                others = [j for j in range(len(rows)) if subgroups[j] != subgroups[k]]
                nearest = min(distance(rows[k], rows[j]) for j in others)
                loss += max(margin - nearest, 0) ** 2
        losses_.append(loss)
    return sum(losses_) / len(losses_) if size_average else sum(losses_)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("subgroups", [[42, 13, 42, 13], [0, 0, 0, 0], [1, 2, 3, 1]])
@pytest.mark.parametrize("size_average", [True, False])
@pytest.mark.parametrize(
    ("name", "distance"), [("cosine", cosine_distance), ("euclidean", euclidean_distance)]
)
def test_matches_loop_oracle(dtype, subgroups, size_average, name, distance):
    embeddings = torch.tensor(E4, dtype=dtype)
    subgroups = torch.tensor(subgroups, dtype=dtype)
    loss = ContrastiveLoss(distance_metric_name=name, margin=1.0, size_average=size_average)
    value = loss(embeddings=embeddings, pairs=PAIRS, labels=LABELS.to(dtype), subgroups=subgroups)
    expected = oracle(embeddings, PAIRS, LABELS, subgroups, 1.0, size_average, distance)
    assert value.dtype == dtype and value.dim() == 0
    assert value.item() == pytest.approx(expected, rel=TOLERANCE[dtype], abs=TOLERANCE[dtype])


def test_reference_values_without_subgroups_are_unchanged():
    embeddings, zeros = torch.tensor(E4), torch.zeros(4)
    assert ContrastiveLoss()(embeddings, PAIRS, LABELS, zeros).item() == pytest.approx(
        0.002786, abs=1e-6
    )
    euclidean = ContrastiveLoss(distance_metric_name="euclidean", margin=1.0)
    assert euclidean(embeddings, PAIRS, LABELS, zeros).item() == pytest.approx(0.125001, abs=1e-6)


def test_missing_subgroups_mean_no_subgroup_negatives():
    embeddings = torch.tensor(E4)
    expected = ContrastiveLoss()(embeddings, PAIRS, LABELS, torch.zeros(4))
    assert ContrastiveLoss()(embeddings, PAIRS, LABELS, None) == expected
    assert ContrastiveLoss()(embeddings, PAIRS, LABELS, torch.empty(0)) == expected
    assert ContrastiveLoss()(embeddings=embeddings, pairs=PAIRS, labels=LABELS) == expected


def test_subgroup_negatives_use_the_rowwise_scale():
    # The original measured subgroup negatives with distance_matrix, (1 - cos) / 2 for cosine,
    # giving 0.703827 here; the consistent rowwise scale gives less (farther negatives).
    embeddings, subgroups = torch.tensor(E4), torch.tensor([42.0, 13, 42, 13])
    value = ContrastiveLoss(size_average=False)(embeddings, PAIRS, LABELS, subgroups).item()
    expected = oracle(embeddings, PAIRS, LABELS, subgroups, 0.5, False, cosine_distance)
    assert value == pytest.approx(expected, rel=1e-5)
    assert value < 0.703827


class HalfSquaredSum(reducers.SumReducer):
    """pml reducer turning per-pair terms ``relu(d)``, ``relu(m - d)`` into ``0.5 * sum(t^2)``."""

    def element_reduction(self, losses_, *_):
        return 0.5 * losses_.pow(2).sum()


def test_matches_pytorch_metric_learning():
    gen = torch.Generator().manual_seed(0)
    embeddings = torch.randn(12, 5, generator=gen, dtype=torch.float64)
    pairs = torch.stack([torch.arange(6), torch.arange(6, 12)], dim=1)
    labels = torch.tensor([1.0, 0, 1, 0, 0, 1], dtype=torch.float64)
    ours = ContrastiveLoss(distance_metric_name="euclidean", margin=2.0, size_average=False)
    value = ours(embeddings, pairs, labels, torch.zeros(12))
    pml = losses.ContrastiveLoss(
        pos_margin=0,
        neg_margin=2.0,
        distance=distances.LpDistance(normalize_embeddings=False),
        reducer=HalfSquaredSum(),
    )
    positive, negative = pairs[labels == 1], pairs[labels == 0]
    indices = (positive[:, 0], positive[:, 1], negative[:, 0], negative[:, 1])
    expected = pml(embeddings, torch.arange(12), indices)
    # rowwise Euclidean adds eps=1e-6 per element, pml's cdist does not
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)


def test_gradients_flow_to_embeddings():
    embeddings = torch.tensor(E4, requires_grad=True)
    ContrastiveLoss()(embeddings, PAIRS, LABELS, torch.tensor([1.0, 2, 1, 2])).backward()
    assert embeddings.grad is not None and torch.isfinite(embeddings.grad).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pairs": torch.tensor([[0, 4], [1, 3]])}, "pairs index rows"),
        ({"pairs": torch.tensor([0, 2])}, "pairs must be an integer tensor"),
        ({"labels": torch.tensor([1.0, 0.0, 1.0])}, "labels must have one score per pair"),
        ({"labels": torch.empty(0)}, "labels of shape"),
        ({"subgroups": torch.zeros(3)}, "subgroups must have one value per embedding"),
        ({"embeddings": torch.zeros(4)}, "embeddings must have shape"),
    ],
)
def test_bad_input_raises_value_error(kwargs, message):
    inputs = {
        "embeddings": torch.tensor(E4),
        "pairs": PAIRS,
        "labels": LABELS,
        "subgroups": torch.zeros(4),
    }
    with pytest.raises(ValueError, match=message):
        ContrastiveLoss()(**{**inputs, **kwargs})
