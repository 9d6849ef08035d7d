"""TripletLoss: loop oracle per mining strategy, pytorch-metric-learning, reference values, XBM."""

import json
import math
import warnings

import pytest
import torch
from pytorch_metric_learning import distances, losses

from quaterion.distances import Distance
from quaterion.loss import GroupLoss, TripletLoss
from quaterion.loss.triplet_loss import semi_hard_triplet_loss

E6 = [[0, -1, 0.5], [0.1, 2, 0.5], [0, 0.3, 0.2], [1, 0, 0.9], [1.2, -1.2, 0.01], [-0.7, 0, 1.5]]
G6 = torch.tensor([1, 2, 3, 3, 2, 1])
TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-10}


def oracle(distance_rows, positive, negative, margin, mining, soft=False, scale_gap=True):
    """Plain loops over a distance matrix given as nested lists, masks as nested bools."""
    n_anchors, n_others = len(distance_rows), len(distance_rows[0])
    if mining == "all":
        total, count = 0.0, 0
        for a in range(n_anchors):
            for p in range(n_others):
                for n in range(n_others):
                    if positive[a][p] and negative[a][n]:
                        value = distance_rows[a][p] - distance_rows[a][n] + margin
                        if value > 0:
                            total, count = total + value, count + 1
        return total / (count + 1e-16)
    if mining == "hard":
        gaps, hardest_negatives = [], []
        for a, row in enumerate(distance_rows):
            hardest_positive = max(d * positive[a][j] for j, d in enumerate(row))
            row_max = max(row)
            hardest_negative = min(d + row_max * (not negative[a][j]) for j, d in enumerate(row))
            gaps.append(hardest_positive - hardest_negative)
            hardest_negatives.append(hardest_negative)
        if soft:
            return sum(math.log1p(math.exp(g)) for g in gaps) / len(gaps)
        if not scale_gap:
            return sum(max(g + margin, 0) for g in gaps) / len(gaps)
        mean_negative = sum(hardest_negatives) / len(hardest_negatives)
        if abs(mean_negative) < 1e-6:  # collapsed embeddings: the documented floor
            mean_negative = 1e-6
        return sum(max(g / mean_negative + margin, 0) for g in gaps) / len(gaps)
    total, count = 0.0, 0
    for a, row in enumerate(distance_rows):
        negatives = [d for j, d in enumerate(row) if negative[a][j]]
        for p, d_ap in enumerate(row):
            if not positive[a][p] or not negatives:
                continue
            farther = [d for d in negatives if d > d_ap]
            chosen = min(farther) if farther else max(negatives)
            total, count = total + max(d_ap - chosen + margin, 0), count + 1
    return total / max(count, 1)


def masks(groups, other_groups, same_batch):
    positive = [
        [g == h and not (same_batch and i == j) for j, h in enumerate(other_groups)]
        for i, g in enumerate(groups)
    ]
    negative = [[g != h for h in other_groups] for g in groups]
    return positive, negative


def loop_distances(name, anchors, others):
    """Distance matrix with the library's matrix scale, computed pair by pair in Python."""

    def cosine(u, v):
        dot = sum(a * b for a, b in zip(u, v, strict=True))
        return (1 - dot / (math.sqrt(sum(a * a for a in u)) * math.sqrt(sum(b * b for b in v)))) / 2

    functions = {
        "cosine": cosine,
        "euclidean": lambda u, v: math.sqrt(sum((a - b) ** 2 for a, b in zip(u, v, strict=True))),
        "manhattan": lambda u, v: sum(abs(a - b) for a, b in zip(u, v, strict=True)),
        "dot_product": lambda u, v: -sum(a * b for a, b in zip(u, v, strict=True)),
    }
    return [[functions[name](u, v) for v in others.tolist()] for u in anchors.tolist()]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    ("mining", "soft", "scale_gap"),
    [
        ("all", False, True),
        ("hard", False, True),
        ("hard", True, True),
        ("hard", False, False),
        ("semi_hard", False, True),
    ],
)
@pytest.mark.parametrize("name", ["cosine", "euclidean", "manhattan", "dot_product"])
def test_matches_loop_oracle(dtype, mining, soft, scale_gap, name):
    gen = torch.Generator().manual_seed(3)
    embeddings = torch.cat([torch.tensor(E6), torch.randn(6, 3, generator=gen)]).to(dtype)
    groups = torch.cat([G6, torch.tensor([1, 4, 4, 2, 3, 4])])
    loss = TripletLoss(
        margin=0.3, distance_metric_name=name, mining=mining, soft=soft, scale_gap=scale_gap
    )
    value = loss(embeddings=embeddings, groups=groups)
    positive, negative = masks(groups.tolist(), groups.tolist(), same_batch=True)
    rows = loop_distances(name, embeddings, embeddings)
    expected = oracle(rows, positive, negative, 0.3, mining, soft, scale_gap)
    assert value.dtype == dtype and value.dim() == 0
    tolerance = TOLERANCE[dtype] * (10 if name in ("manhattan", "dot_product") else 1)
    assert value.item() == pytest.approx(expected, rel=tolerance, abs=tolerance)


@pytest.mark.parametrize(
    ("name", "mining", "expected"),
    [
        ("cosine", "all", 0.566836),
        ("cosine", "hard", 2.663596),
        ("euclidean", "all", 1.043057),
        ("euclidean", "hard", 0.943895),
        ("manhattan", "all", 1.298999),
        ("manhattan", "hard", 1.111206),
        ("dot_product", "all", 1.577250),
        ("dot_product", "hard", 0.005590),
    ],
)
def test_reference_values_are_unchanged(name, mining, expected):
    loss = TripletLoss(distance_metric_name=name, mining=mining)
    assert loss(torch.tensor(E6), G6).item() == pytest.approx(expected, abs=2e-6)


def test_reference_soft_value_is_unchanged():
    assert TripletLoss(soft=True)(torch.tensor(E6), G6).item() == pytest.approx(0.880320, abs=2e-6)


def test_semi_hard_is_real_semi_hard_mining():
    # The original averaged clamp(p - n + m, 0, m) over all distances (0.267163 on E6).
    value = TripletLoss(mining="semi_hard")(torch.tensor(E6), G6).item()
    assert value != pytest.approx(0.267163, abs=1e-3)
    # one anchor: positive at 1, negatives at 0.5 (harder) and 1.2 (semi-hard) -> picks 1.2
    d = torch.tensor([[0.0, 1.0, 0.5, 1.2]])
    positive = torch.tensor([[False, True, False, False]])
    negative = torch.tensor([[False, False, True, True]])
    assert semi_hard_triplet_loss(d, positive, negative, 0.5).item() == pytest.approx(0.3)


@pytest.mark.parametrize("margin", [0.1, 0.5])
def test_all_mining_matches_pytorch_metric_learning(margin):
    gen = torch.Generator().manual_seed(0)
    embeddings = torch.randn(40, 8, generator=gen, dtype=torch.float64)
    groups = torch.randint(0, 5, (40,), generator=gen)
    ours = TripletLoss(margin=margin, distance_metric_name="euclidean", mining="all")
    pml = losses.TripletMarginLoss(
        margin=margin, distance=distances.LpDistance(normalize_embeddings=False)
    )
    assert ours(embeddings, groups).item() == pytest.approx(
        pml(embeddings, groups).item(), rel=1e-9
    )
    # cosine: our (1 - cos) / 2 distances give half of pml's cosine-similarity loss at margin 2m
    cosine = TripletLoss(margin=margin, mining="all")(embeddings, groups)
    pml_cosine = losses.TripletMarginLoss(margin=2 * margin, distance=distances.CosineSimilarity())
    assert cosine.item() == pytest.approx(0.5 * pml_cosine(embeddings, groups).item(), rel=1e-9)


def test_all_mining_gradient_matches_pytorch_metric_learning():
    gen = torch.Generator().manual_seed(1)
    base = torch.randn(24, 4, generator=gen, dtype=torch.float64)
    groups = torch.randint(0, 4, (24,), generator=gen)
    ours, theirs = base.clone().requires_grad_(), base.clone().requires_grad_()
    TripletLoss(margin=0.4, distance_metric_name="euclidean", mining="all")(ours, groups).backward()
    pml = losses.TripletMarginLoss(
        margin=0.4, distance=distances.LpDistance(normalize_embeddings=False)
    )
    pml(theirs, groups).backward()
    assert torch.allclose(ours.grad, theirs.grad, atol=1e-9)


@pytest.mark.parametrize(
    ("mining", "scale_gap"), [("all", True), ("hard", True), ("hard", False), ("semi_hard", True)]
)
def test_xbm_loss_matches_loop_oracle(mining, scale_gap):
    gen = torch.Generator().manual_seed(2)
    embeddings, memory = torch.randn(5, 3, generator=gen), torch.randn(11, 3, generator=gen)
    groups, memory_groups = torch.randint(0, 3, (5,), generator=gen), torch.arange(11) % 3
    loss = TripletLoss(mining=mining, scale_gap=scale_gap)
    value = loss.xbm_loss(embeddings, groups, memory, memory_groups)
    positive, negative = masks(groups.tolist(), memory_groups.tolist(), same_batch=False)
    rows = loop_distances("cosine", embeddings, memory)
    expected = oracle(rows, positive, negative, 0.5, mining, scale_gap=scale_gap)
    assert value.item() == pytest.approx(expected, rel=1e-5)


def test_xbm_reference_value_and_memory_behaviour():
    memory = torch.tensor([[1, -1, 0.5], [-1.1, 2, 0.5], [0, 0.3, 0.2]])
    loss = TripletLoss(mining="hard")
    value = loss.xbm_loss(torch.tensor(E6), G6, memory, torch.tensor([1, 2, 3]))
    assert value.item() == pytest.approx(1.442432, abs=2e-6)
    gen = torch.Generator().manual_seed(0)
    random_memory = torch.randn(100, 3, generator=gen)
    random_groups = torch.randint(1, 4, (100,), generator=gen)
    xbm = loss.xbm_loss(torch.tensor(E6), G6, random_memory, random_groups)
    regular = loss(torch.tensor(E6), G6)
    assert xbm.shape == regular.shape and xbm.item() != pytest.approx(regular.item())
    empty = loss.xbm_loss(torch.tensor(E6), G6, torch.empty(0, 3), torch.empty(0, dtype=torch.long))
    assert empty.item() == 0


def test_every_mining_gives_a_differentiable_scalar_on_a_larger_batch():
    gen = torch.Generator().manual_seed(4)
    embeddings = torch.randn(128, 16, generator=gen, requires_grad=True)
    groups = torch.randint(0, 16, (128,), generator=gen)
    for mining in ("all", "hard", "semi_hard"):
        value = TripletLoss(mining=mining)(embeddings, groups)
        (grad,) = torch.autograd.grad(value, embeddings)
        assert value.dim() == 0 and torch.isfinite(grad).all()


def test_hard_mining_on_nearly_collapsed_embeddings_matches_a_worked_example():
    """Points 0, s, 2s, 3s on a line (groups a, a, b, b), s = 1e-8, Euclidean distance.

    Hardest positive / negative per anchor: (s, 2s), (s, s), (s, s), (s, 2s); the mean
    hardest negative 1.5s is below the floor 1e-6, so the gaps -s, 0, 0, -s are divided by 1e-6:
    loss = mean(relu(-0.01 + 0.5), 0.5, 0.5, relu(-0.01 + 0.5)) = 0.495 (unguarded: 0.25).
    The gaps as functions of the points: x1-x2, 2x1-x0-x2, x1-2x2+x3, x1-x2; all four are
    active, so d loss / dx = [-1, 5, -5, 1] / (4 * 1e-6): positives pulled together, the
    negative neighbours 1 and 2 pushed apart.
    """
    points = (torch.arange(4, dtype=torch.float64) * 1e-8).unsqueeze(1).requires_grad_()
    loss = TripletLoss(margin=0.5, distance_metric_name=Distance.EUCLIDEAN, mining="hard")
    value = loss(points, torch.tensor([0, 0, 1, 1]))
    (grad,) = torch.autograd.grad(value, points)
    assert value.item() == pytest.approx(0.495, abs=1e-12)
    expected = torch.tensor([[-1.0], [5.0], [-5.0], [1.0]], dtype=torch.float64) / 4e-6
    torch.testing.assert_close(grad, expected, rtol=1e-9, atol=0)


@pytest.mark.parametrize(("scale_gap", "expected"), [(False, 0.7), (True, 2.6 / 3)])
def test_plain_and_scaled_hard_gap_match_a_worked_example(scale_gap, expected):
    """Points 0, 1, 2, 3 on a line (groups a, a, b, b), Euclidean distance, margin 1.2.

    Hardest (positive, negative) per anchor: (1, 2), (1, 1), (1, 1), (1, 2); gaps -1, 0, 0, -1.
    Plain: mean(relu(0.2), 1.2, 1.2, relu(0.2)) = 0.7, and every anchor is active, so the
    gradient is [-1, 5, -5, 1] / 4 (the gaps as functions of the points, as above).
    Scaled by the mean hardest negative 1.5: mean(1.2 - 2/3, 1.2, 1.2, 1.2 - 2/3) = 2.6 / 3.
    """
    points = torch.arange(4, dtype=torch.float64).unsqueeze(1).requires_grad_()
    loss = TripletLoss(margin=1.2, distance_metric_name="euclidean", scale_gap=scale_gap)
    value = loss(points, torch.tensor([0, 0, 1, 1]))
    assert value.item() == pytest.approx(expected, abs=1e-12)
    if not scale_gap:
        (grad,) = torch.autograd.grad(value, points)
        expected_grad = torch.tensor([[-1.0], [5.0], [-5.0], [1.0]], dtype=torch.float64) / 4
        torch.testing.assert_close(grad, expected_grad, rtol=1e-12, atol=0)


@pytest.mark.parametrize("name", ["cosine", "euclidean", "manhattan"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_hard_mining_on_collapsed_embeddings_is_finite(name, dtype):
    """Equal embeddings made the original return 0 / 0 = NaN."""
    embeddings = torch.ones(6, 3, dtype=dtype, requires_grad=True)
    value = TripletLoss(margin=0.3, distance_metric_name=name, mining="hard")(embeddings, G6)
    (grad,) = torch.autograd.grad(value, embeddings)
    assert value.item() == pytest.approx(0.3, abs=1e-6) and torch.isfinite(grad).all()


def test_errors_and_config():
    with pytest.raises(
        ValueError, match="Unrecognized mining strategy: easy. Must be one of all, hard, semi_hard"
    ):
        TripletLoss(mining="easy")
    with pytest.raises(ValueError, match="embeddings must have shape"):
        TripletLoss()(torch.zeros(2, 3, 4), torch.zeros(2))
    with pytest.raises(ValueError, match="Unrecognized distance name"):
        TripletLoss(distance_metric_name="cos")
    with pytest.warns(UserWarning, match="soft=True"):
        TripletLoss(mining="all", soft=True)
    with pytest.warns(UserWarning, match=r"scale_gap=False\) only changes mining='hard'"):
        TripletLoss(mining="semi_hard", scale_gap=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        TripletLoss(mining="hard", soft=True)
    loss = TripletLoss(margin=0.2, distance_metric_name=Distance.EUCLIDEAN, mining="all")
    assert TripletLoss(**loss.get_config_dict()).get_config_dict() == {
        "distance_metric_name": "euclidean",
        "margin": 0.2,
        "mining": "all",
        "soft": False,
        "distributed": False,
        "scale_gap": True,
    }
    plain = TripletLoss(margin=0.1, scale_gap=False)
    restored = TripletLoss(**json.loads(json.dumps(plain.get_config_dict())))
    assert restored.scale_gap is False and restored.get_config_dict() == plain.get_config_dict()
    embeddings = torch.tensor(E6)
    assert restored(embeddings, G6).item() == plain(embeddings, G6).item()


def test_group_loss_without_xbm_names_the_class():
    class Plain(GroupLoss):
        pass

    with pytest.raises(NotImplementedError, match="XBM is not implemented for Plain"):
        Plain().xbm_loss(torch.zeros(1, 2), torch.zeros(1), torch.zeros(1, 2), torch.zeros(1))
