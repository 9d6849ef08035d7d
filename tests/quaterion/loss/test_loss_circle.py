"""CircleLoss against a loop oracle and pytorch-metric-learning's CircleLoss."""

import math

import pytest
import torch
from pytorch_metric_learning import distances, losses

from quaterion.loss import CircleLoss

E6 = [[0, -1, 0.5], [0.1, 2, 0.5], [0, 0.3, 0.2], [1, 0, 0.9], [1.2, -1.2, 0.01], [-0.7, 0, 1.5]]
G6 = torch.tensor([1, 2, 3, 3, 2, 1])


def similarity(name, u, v):
    if name == "cosine":
        dot = sum(a * b for a, b in zip(u, v, strict=True))
        cos = dot / (math.sqrt(sum(a * a for a in u)) * math.sqrt(sum(b * b for b in v)))
        return (cos + 1) / 2
    return 1 / (1 + math.sqrt(sum((a - b) ** 2 for a, b in zip(u, v, strict=True))))


def logsumexp(values):
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def oracle(embeddings, groups, margin, scale, name):
    rows, groups = embeddings.tolist(), groups.tolist()
    positive_logits, negative_logits = [], []
    for i in range(len(rows)):
        for j in range(i + 1, len(rows)):
            s = similarity(name, rows[i], rows[j])
            if groups[i] == groups[j]:
                positive_logits.append(-scale * max(1 + margin - s, 0) * (s - (1 - margin)))
            else:
                negative_logits.append(scale * max(s + margin, 0) * (s - margin))
    x = logsumexp(positive_logits) + logsumexp(negative_logits)
    return max(x, 0) + math.log1p(math.exp(-abs(x)))  # softplus


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("margin", "scale"), [(0.25, 256.0), (0.4, 80.0), (0.1, 2.0)])
@pytest.mark.parametrize("name", ["cosine", "euclidean"])
def test_matches_loop_oracle(dtype, margin, scale, name):
    embeddings = torch.tensor(E6, dtype=dtype)
    loss = CircleLoss(margin=margin, scale_factor=scale, distance_metric_name=name)
    value = loss(embeddings=embeddings, groups=G6)
    expected = oracle(embeddings, G6, margin, scale, name)
    assert value.dtype == dtype and value.dim() == 0
    rel = 1e-5 if dtype == torch.float32 else 1e-10
    assert value.item() == pytest.approx(expected, rel=rel)


class PairList(distances.CosineSimilarity):
    """pml 'distance' returning a precomputed row of similarities (one virtual anchor)."""

    def __init__(self, row):
        super().__init__()
        self.row = row

    def forward(self, query_emb, ref_emb=None):
        return self.row


def test_equals_pml_circle_loss_of_one_anchor_holding_all_pairs():
    # Ours aggregates over all pairs i < j at once; pml aggregates per anchor. With one virtual
    # anchor whose similarities are our pair similarities (positives: same-group pairs), pml's
    # per-anchor formula (the paper's) is exactly ours.
    gen = torch.Generator().manual_seed(0)
    embeddings = torch.randn(12, 5, generator=gen, dtype=torch.float64)
    groups = torch.randint(0, 3, (12,), generator=gen)
    ours = CircleLoss(margin=0.4, scale_factor=80)(embeddings, groups)
    upper = torch.ones(12, 12, dtype=torch.bool).triu(1)
    cos = (
        torch.nn.functional.normalize(embeddings, dim=1)
        @ torch.nn.functional.normalize(embeddings, dim=1).T
    )
    row = ((cos + 1) / 2)[upper].unsqueeze(0)  # (1, K)
    is_negative = (groups.unsqueeze(1) != groups.unsqueeze(0))[upper].long()  # (K,)
    pml = losses.CircleLoss(m=0.4, gamma=80, distance=PairList(row))
    expected = pml(
        torch.zeros(1, 5, dtype=torch.float64),
        torch.zeros(1, dtype=torch.long),
        ref_emb=torch.zeros(len(is_negative), 5, dtype=torch.float64),
        ref_labels=is_negative,
    )
    assert ours.item() == pytest.approx(expected.item(), rel=1e-9)


def test_paper_weights_not_the_original_ones():
    # The original's 1 + m + sp / sn - m weights gave 342.532196 here.
    assert CircleLoss()(torch.tensor(E6), G6).item() != pytest.approx(342.532196, rel=1e-3)


def test_no_positive_or_no_negative_pair_gives_zero_with_gradient():
    embeddings = torch.tensor(E6, requires_grad=True)
    for groups in (torch.arange(6), torch.zeros(6, dtype=torch.long)):
        value = CircleLoss()(embeddings, groups)
        value.backward()
        assert value.item() == 0 and embeddings.grad is not None


def test_config_and_bad_input():
    config = CircleLoss(margin=0.1, scale_factor=32).get_config_dict()
    assert config == {"distance_metric_name": "cosine", "margin": 0.1, "scale_factor": 32}
    assert CircleLoss(**config).get_config_dict() == config
    with pytest.raises(ValueError, match="groups must have one id per embedding"):
        CircleLoss()(torch.tensor(E6), torch.zeros(6, 1))
