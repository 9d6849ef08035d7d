"""FastAPLoss against a loop oracle, pytorch-metric-learning (the reference port) and values."""

import math

import pytest
import torch
from pytorch_metric_learning import losses

from quaterion.loss import FastAPLoss

E6 = [[0, -1, 0.5], [0.1, 2, 0.5], [0, 0.3, 0.2], [1, 0, 0.9], [1.2, -1.2, 0.01], [-0.7, 0, 1.5]]
G6 = torch.tensor([1, 2, 3, 3, 2, 1])


def oracle(embeddings, groups, num_bins):
    rows = [[x / math.sqrt(sum(v * v for v in row)) for x in row] for row in embeddings.tolist()]
    groups = groups.tolist()
    delta = 4 / num_bins
    centers = [4 * i / num_bins for i in range(num_bins + 1)]
    precisions = []
    for i, anchor in enumerate(rows):
        h_pos, h_neg = [0.0] * len(centers), [0.0] * len(centers)
        for j, other in enumerate(rows):
            if i == j:
                continue
            squared = sum((a - b) ** 2 for a, b in zip(anchor, other, strict=True))
            for bin_index, center in enumerate(centers):
                weight = max(1 - abs(squared - center) / delta, 0)
                if groups[i] == groups[j]:
                    h_pos[bin_index] += weight
                else:
                    h_neg[bin_index] += weight
        num_positives = sum(g == groups[i] for g in groups) - 1
        if num_positives == 0:
            continue
        cum_pos = cum_all = precision = 0.0
        for bin_index in range(len(centers)):
            cum_pos += h_pos[bin_index]
            cum_all += h_pos[bin_index] + h_neg[bin_index]
            if cum_all > 0:
                precision += h_pos[bin_index] * cum_pos / cum_all
        precisions.append(precision / num_positives)
    return 1 - sum(precisions) / len(precisions)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("num_bins", [3, 5, 10])
def test_matches_loop_oracle(dtype, num_bins):
    gen = torch.Generator().manual_seed(num_bins)
    embeddings = torch.cat([torch.tensor(E6), torch.randn(6, 3, generator=gen)]).to(dtype)
    groups = torch.cat([G6, torch.tensor([1, 2, 4, 4, 5, 3])])  # group 5 has no positive
    value = FastAPLoss(num_bins)(embeddings=embeddings, groups=groups)
    assert value.dtype == dtype and value.dim() == 0
    rel = 1e-5 if dtype == torch.float32 else 1e-10
    assert value.item() == pytest.approx(oracle(embeddings, groups, num_bins), rel=rel)


def test_reference_values_are_unchanged():
    embeddings = torch.tensor(E6)
    assert FastAPLoss(5)(embeddings, G6).item() == pytest.approx(0.752932, abs=1e-6)
    assert FastAPLoss(10)(embeddings, G6).item() == pytest.approx(0.709519, abs=1e-6)
    assert FastAPLoss()(embeddings, G6).item() == pytest.approx(0.709519, abs=1e-6)


@pytest.mark.parametrize("num_bins", [5, 10])
def test_matches_pytorch_metric_learning_value_and_gradient(num_bins):
    gen = torch.Generator().manual_seed(0)
    base = torch.randn(32, 6, generator=gen, dtype=torch.float64)
    groups = torch.randint(0, 6, (32,), generator=gen)
    ours, theirs = base.clone().requires_grad_(), base.clone().requires_grad_()
    value = FastAPLoss(num_bins)(ours, groups)
    expected = losses.FastAPLoss(num_bins=num_bins)(theirs, groups)
    assert value.item() == pytest.approx(expected.item(), rel=1e-9)
    value.backward()
    expected.backward()
    assert torch.allclose(ours.grad, theirs.grad, atol=1e-8)


def test_normalised_inputs_with_float_groups_match_pml():
    embeddings = torch.nn.functional.normalize(torch.tensor(E6), dim=1)
    expected = losses.FastAPLoss(num_bins=5)(embeddings, G6.float())
    assert FastAPLoss(5)(embeddings, G6.float()).item() == pytest.approx(expected.item(), rel=1e-5)


def test_no_positive_gives_zero_and_bad_input_raises():
    embeddings = torch.tensor(E6, requires_grad=True)
    value = FastAPLoss()(embeddings, torch.arange(6))
    value.backward()
    assert value.item() == 0
    with pytest.raises(ValueError, match="num_bins >= 1"):
        FastAPLoss(0)
    with pytest.raises(ValueError, match=r"groups must have one id per embedding, shape \(6,\)"):
        FastAPLoss()(torch.tensor(E6), G6[:5])
    assert FastAPLoss(7).get_config_dict() == {"num_bins": 7}
