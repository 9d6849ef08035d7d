"""Masks, masked reductions, dtype limits and normalisation used by the losses."""

import itertools

import pytest
import torch

from quaterion.utils import (
    get_anchor_negative_mask,
    get_anchor_positive_mask,
    get_masked_maximum,
    get_masked_minimum,
    get_triplet_mask,
    info_value_of_dtype,
    l2_norm,
    max_value_of_dtype,
    min_value_of_dtype,
)

LABELS = torch.tensor([1, 2, 1, 3, 2])


def test_positive_mask_of_one_batch_clears_the_diagonal():
    mask = get_anchor_positive_mask(LABELS)
    n = len(LABELS)
    expected = [[i != j and LABELS[i] == LABELS[j] for j in range(n)] for i in range(n)]
    assert mask.tolist() == expected


def test_positive_mask_of_two_label_tensors_keeps_the_diagonal():
    # batch vs. memory holding different objects with equal labels: (i, i) is a real positive
    memory = LABELS.clone()
    mask = get_anchor_positive_mask(LABELS, memory)
    assert mask.diagonal().all()
    other = torch.tensor([2, 1])
    assert get_anchor_positive_mask(LABELS, other).tolist() == [
        [a == b for b in other.tolist()] for a in LABELS.tolist()
    ]


def test_negative_mask():
    other = torch.tensor([3, 1])
    assert get_anchor_negative_mask(LABELS).tolist() == [
        [a != b for b in LABELS.tolist()] for a in LABELS.tolist()
    ]
    assert get_anchor_negative_mask(LABELS, other).tolist() == [
        [a != b for b in other.tolist()] for a in LABELS.tolist()
    ]


def test_triplet_mask_matches_loop():
    mask = get_triplet_mask(LABELS)
    n = len(LABELS)
    labels = LABELS.tolist()
    for a, p, q in itertools.product(range(n), repeat=3):
        valid = len({a, p, q}) == 3 and labels[a] == labels[p] and labels[a] != labels[q]
        assert bool(mask[a, p, q]) == valid


def test_masked_maximum_and_minimum():
    dists = torch.tensor([[0.5, 2.0, 1.0], [3.0, 0.1, 0.7]])
    mask = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    assert get_masked_maximum(dists, mask).flatten().tolist() == pytest.approx([1.0, 0.1])
    assert get_masked_minimum(dists, mask).flatten().tolist() == pytest.approx([0.5, 3.0])
    assert get_masked_maximum(dists, mask).shape == (2, 1)


def test_dtype_limits():
    assert max_value_of_dtype(torch.float32) == torch.finfo(torch.float32).max
    assert min_value_of_dtype(torch.int64) == torch.iinfo(torch.int64).min
    assert info_value_of_dtype(torch.float16).max == 65504.0
    with pytest.raises(TypeError, match="Does not support torch.bool"):
        info_value_of_dtype(torch.bool)


def test_l2_norm_default_dim_is_zero():
    x = torch.tensor([[3.0, 1.0], [4.0, 0.0]])
    assert torch.allclose(l2_norm(x), torch.tensor([[0.6, 1.0], [0.8, 0.0]]))
    assert torch.allclose(l2_norm(x, dim=1).norm(dim=1), torch.ones(2))
