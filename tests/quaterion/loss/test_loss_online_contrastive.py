"""OnlineContrastiveLoss against a loop oracle and pytorch-metric-learning; XBM; errors."""

import math

import pytest
import torch
from pytorch_metric_learning import distances, losses, reducers

from quaterion.loss import OnlineContrastiveLoss

E6 = [[0, -1, 0.5], [0.1, 2, 0.5], [0, 0.3, 0.2], [1, 0, 0.9], [1.2, -1.2, 0.01], [-0.7, 0, 1.5]]
G6 = torch.tensor([1, 2, 3, 3, 2, 1])
TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-10}


def cosine_matrix_distance(u, v):  # the cosine distance_matrix scale: (1 - cos) / 2
    dot = sum(a * b for a, b in zip(u, v, strict=True))
    return (1 - dot / (math.sqrt(sum(a * a for a in u)) * math.sqrt(sum(b * b for b in v)))) / 2


def euclidean(u, v):
    return math.sqrt(sum((a - b) ** 2 for a, b in zip(u, v, strict=True)))


def oracle(anchors, groups, others, other_groups, margin, mining, distance, same_batch):
    """Plain loops; ``same_batch`` excludes (i, i) pairs."""
    a_rows, o_rows, groups, other_groups = anchors.tolist(), others.tolist(), groups, other_groups
    positives, negatives, hardest_pos, hardest_neg = [], [], [], []
    for i, row in enumerate(a_rows):
        pos = [
            distance(row, o)
            for j, o in enumerate(o_rows)
            if groups[i] == other_groups[j] and not (same_batch and i == j)
        ]
        neg = [distance(row, o) for j, o in enumerate(o_rows) if groups[i] != other_groups[j]]
        positives += pos
        negatives += neg
        if pos and max(pos) > 0:
            hardest_pos.append(max(pos))
        if neg:
            hardest_neg.append(min(neg))
    if mining == "hard":
        positives, negatives = hardest_pos, hardest_neg
    positive_loss = sum(positives) / max(len(positives), 1)
    negative_loss = sum(max(margin - d, 0) for d in negatives) / max(len(negatives), 1)
    return 0.5 * (positive_loss + negative_loss)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("mining", ["all", "hard"])
@pytest.mark.parametrize(
    ("name", "distance"), [("cosine", cosine_matrix_distance), ("euclidean", euclidean)]
)
def test_matches_loop_oracle(dtype, mining, name, distance):
    embeddings = torch.tensor(E6, dtype=dtype)
    groups = G6.tolist()
    loss = OnlineContrastiveLoss(margin=0.7, distance_metric_name=name, mining=mining)
    value = loss(embeddings=embeddings, groups=G6)
    expected = oracle(embeddings, groups, embeddings, groups, 0.7, mining, distance, True)
    assert value.dtype == dtype and value.dim() == 0
    assert value.item() == pytest.approx(expected, rel=TOLERANCE[dtype], abs=1e-6)


def test_an_object_is_not_its_own_negative():
    # The original counted (i, i) as a negative at distance 0: hard gave 0.489430 on E6.
    embeddings = torch.tensor(E6)
    hard = OnlineContrastiveLoss(mining="hard")(embeddings, G6).item()
    assert hard != pytest.approx(0.489430, abs=1e-3)
    # two tight groups on opposite sides: no negative inside the margin, positives at
    # cosine distance (1 - cos) / 2 with cos = 1 / sqrt(1 + 0.1^2)
    two_far_groups = torch.tensor(
        [[1.0, 0.0], [1.0, 0.1], [-1.0, 0.0], [-1.0, 0.1]], dtype=torch.float64
    )
    value = OnlineContrastiveLoss(mining="hard")(two_far_groups, torch.tensor([0, 0, 1, 1]))
    assert value.item() == pytest.approx(0.5 * (1 - 1 / math.sqrt(1.01)) / 2, rel=1e-9)


def test_all_mining_matches_pytorch_metric_learning():
    # all = 0.5 * (mean over positive pairs of d + mean over negative pairs of relu(m - d))
    gen = torch.Generator().manual_seed(0)
    embeddings = torch.randn(16, 4, generator=gen, dtype=torch.float64)
    groups = torch.randint(0, 4, (16,), generator=gen)
    value = OnlineContrastiveLoss(margin=3.0, distance_metric_name="euclidean", mining="all")(
        embeddings, groups
    )
    pml = losses.ContrastiveLoss(
        pos_margin=0,
        neg_margin=3.0,
        distance=distances.LpDistance(normalize_embeddings=False),
        reducer=reducers.MeanReducer(),
    )
    assert value.item() == pytest.approx(0.5 * pml(embeddings, groups).item(), rel=1e-9)


@pytest.mark.parametrize("mining", ["all", "hard"])
def test_xbm_loss_matches_loop_oracle(mining):
    gen = torch.Generator().manual_seed(1)
    embeddings, memory = torch.randn(5, 3, generator=gen), torch.randn(9, 3, generator=gen)
    groups, memory_groups = torch.randint(0, 3, (5,), generator=gen), torch.arange(9) % 3
    loss = OnlineContrastiveLoss(mining=mining)
    value = loss.xbm_loss(embeddings, groups, memory, memory_groups)
    expected = oracle(
        embeddings,
        groups.tolist(),
        memory,
        memory_groups.tolist(),
        0.5,
        mining,
        cosine_matrix_distance,
        False,
    )
    assert value.item() == pytest.approx(expected, rel=1e-5)
    empty = loss.xbm_loss(embeddings, groups, torch.empty(0, 3), torch.empty(0, dtype=torch.long))
    assert empty.item() == 0


def test_unknown_mining_and_bad_shapes_raise_value_error():
    with pytest.raises(
        ValueError, match="Unrecognized mining strategy: semi_hard. Must be one of all, hard"
    ):
        OnlineContrastiveLoss(mining="semi_hard")
    with pytest.raises(ValueError, match="groups must have one id per embedding"):
        OnlineContrastiveLoss()(torch.tensor(E6), G6[:4])
