"""Distributed in-batch negatives: 2 gloo processes give the single-process gradients."""

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

from quaterion.loss import (
    ContrastiveLoss,
    MultipleNegativesRankingLoss,
    OnlineContrastiveLoss,
    TripletLoss,
)
from quaterion.utils.distributed import gather_pairs, gather_with_grad

WORLD_SIZE = 2
GROUP_SIZES = (5, 3)  # unequal shards exercise the padding
PAIR_COUNTS = (3, 2)


def shards():
    """Per-rank inputs, identical in every process (seeded)."""
    gen = torch.Generator().manual_seed(0)
    out = []
    for rank in range(WORLD_SIZE):
        groups_embeddings = torch.randn(GROUP_SIZES[rank], 4, generator=gen, dtype=torch.float64)
        groups = torch.randint(0, 3, (GROUP_SIZES[rank],), generator=gen)
        count = PAIR_COUNTS[rank]
        pair_embeddings = torch.randn(2 * count, 4, generator=gen, dtype=torch.float64)
        pairs = torch.stack([torch.arange(count), torch.arange(count, 2 * count)], dim=1)
        labels = torch.randint(0, 2, (count,), generator=gen).double()
        subgroups = torch.tensor([rank, rank + 5] * count, dtype=torch.float64)[: 2 * count]
        out.append((groups_embeddings, groups, pair_embeddings, pairs, labels, subgroups))
    return out


def group_losses(distributed):
    return {
        "triplet_hard": TripletLoss(mining="hard", distributed=distributed),
        "triplet_all": TripletLoss(mining="all", distributed=distributed),
        "triplet_semi_hard": TripletLoss(mining="semi_hard", distributed=distributed),
        "online_contrastive": OnlineContrastiveLoss(mining="all", distributed=distributed),
    }


def pair_losses(distributed):
    return {
        "mnrl": MultipleNegativesRankingLoss(symmetric=True, distributed=distributed),
        "contrastive": ContrastiveLoss(distributed=distributed),
    }


def gradients(group_inputs, pair_inputs, distributed):
    """Gradient of every loss w.r.t. the given embeddings, plus the loss values."""
    out = {}
    embeddings, groups = group_inputs
    for name, loss in group_losses(distributed).items():
        leaf = embeddings.clone().requires_grad_()
        value = loss(embeddings=leaf, groups=groups)
        value.backward()
        out[name], out[f"{name}_value"] = leaf.grad, value.detach().reshape(1)
    embeddings, pairs, labels, subgroups = pair_inputs
    for name, loss in pair_losses(distributed).items():
        leaf = embeddings.clone().requires_grad_()
        # MNRL takes positive pairs only
        scores = torch.ones_like(labels) if name == "mnrl" else labels
        value = loss(embeddings=leaf, pairs=pairs, labels=scores, subgroups=subgroups)
        value.backward()
        out[name], out[f"{name}_value"] = leaf.grad, value.detach().reshape(1)
    return out


def worker(rank, store_path, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"file://{store_path}", rank=rank, world_size=WORLD_SIZE
    )
    try:
        embeddings, groups, pair_embeddings, pairs, labels, subgroups = shards()[rank]
        result = gradients((embeddings, groups), (pair_embeddings, pairs, labels, subgroups), True)
        gathered = gather_with_grad(torch.full((rank + 1, 2), float(rank)))
        result["gathered"] = gathered
        result["gathered_pairs"] = gather_pairs(pairs, len(pair_embeddings))
        save_file(result, os.path.join(out_dir, f"rank{rank}.safetensors"))
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def rank_results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dist")
    mp.spawn(worker, args=(str(tmp / "store"), str(tmp)), nprocs=WORLD_SIZE, join=True)
    return [load_file(tmp / f"rank{rank}.safetensors") for rank in range(WORLD_SIZE)]


def single_process_reference():
    parts = shards()
    embeddings = torch.cat([p[0] for p in parts])
    groups = torch.cat([p[1] for p in parts])
    offsets = [0, len(parts[0][2])]
    pair_embeddings = torch.cat([p[2] for p in parts])
    pairs = torch.cat([p[3] + offset for p, offset in zip(parts, offsets, strict=True)])
    labels = torch.cat([p[4] for p in parts])
    subgroups = torch.cat([p[5] for p in parts])
    return gradients((embeddings, groups), (pair_embeddings, pairs, labels, subgroups), False)


@pytest.mark.parametrize(
    ("name", "sizes"),
    [
        ("mnrl", [2 * c for c in PAIR_COUNTS]),
        ("contrastive", [2 * c for c in PAIR_COUNTS]),
        ("triplet_hard", GROUP_SIZES),
        ("triplet_all", GROUP_SIZES),
        ("triplet_semi_hard", GROUP_SIZES),
        ("online_contrastive", GROUP_SIZES),
    ],
)
def test_rank_gradients_equal_single_process_gradients(rank_results, name, sizes):
    reference = single_process_reference()
    expected = torch.split(reference[name], list(sizes))
    for rank, result in enumerate(rank_results):
        # every rank computes the loss of the global batch ...
        assert torch.allclose(result[f"{name}_value"], reference[f"{name}_value"], atol=1e-12)
        # ... and its own embeddings get exactly the single-process gradient (scale 1)
        assert torch.allclose(result[name], expected[rank], atol=1e-12)
        assert expected[rank].abs().sum() > 0


def test_gather_orders_ranks_and_offsets_pairs(rank_results):
    expected = torch.cat([torch.full((rank + 1, 2), float(rank)) for rank in range(WORLD_SIZE)])
    pairs = torch.cat([torch.tensor([[0, 3], [1, 4], [2, 5]]), torch.tensor([[6, 8], [7, 9]])])
    for result in rank_results:
        assert torch.equal(result["gathered"], expected)
        assert torch.equal(result["gathered_pairs"], pairs)


def test_without_process_group_nothing_is_gathered():
    tensor = torch.randn(3, 2)
    assert gather_with_grad(tensor) is tensor
    assert gather_pairs(torch.tensor([[0, 1]]), 2).tolist() == [[0, 1]]
    loss = TripletLoss(distributed=True)
    groups = torch.tensor([0, 0, 1])
    assert loss(tensor, groups).item() == TripletLoss()(tensor, groups).item()
