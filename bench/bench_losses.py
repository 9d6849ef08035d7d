"""Forward+backward time of every quaterion loss against its pytorch-metric-learning counterpart.

Batch sizes 256 and 1024, embedding dim 128, groups of 8 objects (pairs: B/2 pairs). Each case
runs a warm-up, then the median of repeated timings (ours and pml alternating, so that load
changes hit both alike). Prints ONE JSON line:
``{"results": {loss: {batch: {"ours_ms", "pml_ms", "ratio"}}}, "peak_rss_mb": ...}`` where
``ratio = ours_ms / pml_ms`` (< 1: ours is faster). CenterLoss has no pml counterpart (pml_ms null).

    .venv/bin/python bench/bench_losses.py [--threads 1] [--repeats 7] [--batch-sizes 256 1024]
        [--device cpu|cuda] [--only triplet_all contrastive ...]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from collections.abc import Callable

import torch
from pytorch_metric_learning import distances, losses, miners, reducers

from quaterion.loss import (
    ArcFaceLoss,
    CenterLoss,
    CircleLoss,
    ContrastiveLoss,
    CosFaceLoss,
    FastAPLoss,
    MultipleNegativesRankingLoss,
    OnlineContrastiveLoss,
    SoftmaxLoss,
    TripletLoss,
)

DIM = 128
GROUP_SIZE = 8

Step = Callable[[torch.Tensor], torch.Tensor]
Cases = dict[str, tuple[Step, Step | None]]


def embeddings_of(batch: int, device: torch.device) -> torch.Tensor:
    gen = torch.Generator().manual_seed(batch)
    return torch.randn(batch, DIM, generator=gen).to(device)


def group_cases(batch: int, device: torch.device) -> Cases:
    """name -> (ours, pml), each mapping embeddings (B, DIM) to a loss over groups of 8."""
    gen = torch.Generator().manual_seed(batch + 1)
    groups = (torch.arange(batch) // GROUP_SIZE)[torch.randperm(batch, generator=gen)].to(device)
    classes = batch // GROUP_SIZE
    pml_pairs = losses.ContrastiveLoss(
        pos_margin=1,
        neg_margin=0.5,
        distance=distances.CosineSimilarity(),
        reducer=reducers.MeanReducer(),
    )
    triplet_margin = losses.TripletMarginLoss(margin=0.5)
    semi_hard_miner = miners.TripletMarginMiner(margin=0.5, type_of_triplets="semihard")
    cases = {
        "triplet_all": (TripletLoss(mining="all"), triplet_margin, None),
        "triplet_hard": (TripletLoss(mining="hard"), triplet_margin, miners.BatchHardMiner()),
        "triplet_semi_hard": (TripletLoss(mining="semi_hard"), triplet_margin, semi_hard_miner),
        "online_contrastive_all": (OnlineContrastiveLoss(mining="all"), pml_pairs, None),
        "online_contrastive_hard": (
            OnlineContrastiveLoss(mining="hard"),
            pml_pairs,
            miners.BatchHardMiner(),
        ),
        "circle": (CircleLoss(), losses.CircleLoss(m=0.25, gamma=256), None),
        "fast_ap": (FastAPLoss(), losses.FastAPLoss(num_bins=10), None),
        "softmax": (SoftmaxLoss(DIM, classes), losses.NormalizedSoftmaxLoss(classes, DIM), None),
        "arcface": (ArcFaceLoss(DIM, classes), losses.ArcFaceLoss(classes, DIM), None),
        "cosface": (CosFaceLoss(DIM, classes), losses.CosFaceLoss(classes, DIM), None),
        "center": (CenterLoss(DIM, classes), None, None),
    }

    def ours_step(loss):
        loss.to(device)
        return lambda e: loss(embeddings=e, groups=groups)

    def pml_step(loss, miner):
        if loss is None:
            return None
        loss.to(device)
        if miner is None:
            return lambda e: loss(e, groups)
        return lambda e: loss(e, groups, miner(e, groups))

    return {
        name: (ours_step(ours), pml_step(pml, miner)) for name, (ours, pml, miner) in cases.items()
    }


def pair_cases(batch: int, device: torch.device) -> Cases:
    """B/2 pairs (a_i, b_i) = rows (i, i + B/2), random 0/1 labels and 4 subgroups."""
    half = batch // 2
    gen = torch.Generator().manual_seed(batch + 2)
    pairs = torch.stack([torch.arange(half), torch.arange(half, batch)], dim=1)
    labels = torch.randint(0, 2, (half,), generator=gen).float()
    subgroups = torch.randint(0, 4, (batch,), generator=gen).float()
    positive, negative = pairs[labels == 1], pairs[labels == 0]
    pair_indices = tuple(
        t.to(device) for t in (positive[:, 0], positive[:, 1], negative[:, 0], negative[:, 1])
    )
    anchors, candidates = pairs[:, 0], pairs[:, 1]
    other = (anchors.unsqueeze(1) != anchors.unsqueeze(0)).nonzero(as_tuple=True)
    ntxent_indices = tuple(
        t.to(device) for t in (anchors, candidates, anchors[other[0]], candidates[other[1]])
    )
    pairs, labels, subgroups = pairs.to(device), labels.to(device), subgroups.to(device)
    no_subgroups, ones = torch.zeros_like(subgroups), torch.ones_like(labels)
    pml_contrastive = losses.ContrastiveLoss(reducer=reducers.MeanReducer())
    ntxent = losses.NTXentLoss(temperature=0.1)
    contrastive, mnrl = ContrastiveLoss(), MultipleNegativesRankingLoss()
    return {
        "contrastive": (
            lambda e: contrastive(e, pairs, labels, no_subgroups),
            lambda e: pml_contrastive(e, None, pair_indices),
        ),
        "contrastive_subgroups": (
            lambda e: contrastive(e, pairs, labels, subgroups),
            lambda e: pml_contrastive(e, None, pair_indices),
        ),
        "multiple_negatives_ranking": (
            lambda e: mnrl(e, pairs, ones, subgroups),
            lambda e: ntxent(e, None, ntxent_indices),
        ),
    }


def time_pair(
    ours: Step, pml: Step | None, embeddings: torch.Tensor, repeats: int
) -> tuple[float, float | None]:
    """Median forward+backward milliseconds of ``ours`` and ``pml``, timed alternately."""
    steps = [step for step in (ours, pml) if step is not None]
    cuda = embeddings.is_cuda
    leaf = embeddings.clone().requires_grad_()
    for step in steps:  # warm-up
        for _ in range(2):
            step(leaf).backward()
    timings: list[list[float]] = [[] for _ in steps]
    for _ in range(repeats):
        for step, series in zip(steps, timings, strict=True):
            leaf.grad = None
            if cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            step(leaf).backward()
            if cuda:
                torch.cuda.synchronize()
            series.append((time.perf_counter() - start) * 1000)
    medians = [statistics.median(series) for series in timings]
    return medians[0], (medians[1] if pml is not None else None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per case (median)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--only", nargs="+", default=None, help="bench only these case names")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    results: dict[str, dict[str, dict[str, float | None]]] = {}
    for batch in args.batch_sizes:
        embeddings = embeddings_of(batch, device)
        cases = {**group_cases(batch, device), **pair_cases(batch, device)}
        for name, (ours, pml) in cases.items():
            if args.only and name not in args.only:
                continue
            ours_ms, pml_ms = time_pair(ours, pml, embeddings, args.repeats)
            results.setdefault(name, {})[str(batch)] = {
                "ours_ms": round(ours_ms, 3),
                "pml_ms": None if pml_ms is None else round(pml_ms, 3),
                "ratio": None if pml_ms is None else round(ours_ms / pml_ms, 3),
            }
    max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    summary = {
        "bench": "losses_forward_backward",
        "device": str(device),
        "dim": DIM,
        "group_size": GROUP_SIZE,
        "threads": args.threads,
        "repeats": args.repeats,
        "results": results,
        "peak_rss_mb": round(max_rss / 2**20 if sys.platform == "darwin" else max_rss / 2**10, 1),
    }
    if device.type == "cuda":
        summary["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
