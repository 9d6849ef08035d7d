"""Soak test: 1,000 cached epochs through `Quaterion.fit`; does memory stay flat?

Workload: 2,000 vectors in 20 groups, a frozen random MLP encoder (cached in full), a
SkipConnectionHead, TripletLoss, batch 128, no progress bar / logger / checkpoints. A callback
samples RSS (/proc/self/statm; raw and after `malloc_trim`), Python heap blocks
(`sys.getallocatedblocks`) and the number of gc-tracked objects at the warm-up epoch, half-way
and at the last epoch; growth is measured from the warmed-up epoch (so one-off allocations of the
first epochs do not count) to the last, and over the second half alone (a leak grows both halves
alike; allocator settling does not). The baseline is a bare torch loop over
the same cached rows and batches, measured in the same run: `epoch_ratio` is Quaterion's
per-epoch time over the bare loop's.

    python bench/bench_soak.py [--epochs 1000] [--trace]

`--trace` also takes tracemalloc snapshots at the warm-up and the last epoch and prints the top
growing allocation sites to stderr (slow; for hunting a leak). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import resource
import sys
import time
import tracemalloc
import warnings
from array import array

import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from quaterion import Quaterion, TrainableModel
from quaterion.dataset import GroupSimilarityDataLoader, SimilarityGroupSample
from quaterion.loss import TripletLoss
from quaterion.train.cache import CacheConfig, CacheType
from quaterion_models.encoders import Encoder
from quaterion_models.heads import SkipConnectionHead

SAMPLES, GROUPS, DIM, HIDDEN, BATCH = 2000, 20, 32, 64, 128
WARMUP_EPOCH = 20  # growth is measured from the end of this epoch on
_LIBC = ctypes.CDLL("libc.so.6")


def stack(batch: list[Tensor]) -> Tensor:
    return torch.stack(batch)


class FrozenMlp(Encoder):
    """Frozen random `Linear -> tanh -> Linear` (its output is cached, so it runs once)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(DIM, HIDDEN), nn.Tanh(), nn.Linear(HIDDEN, HIDDEN))

    @property
    def trainable(self) -> bool:
        return False

    @property
    def embedding_size(self) -> int:
        return HIDDEN

    def get_collate_fn(self):
        return stack

    def forward(self, batch: Tensor) -> Tensor:
        return self.net(batch)

    def save(self, output_path: str) -> None:
        raise NotImplementedError("not needed by the benchmark")

    @classmethod
    def load(cls, input_path: str) -> FrozenMlp:
        raise NotImplementedError("not needed by the benchmark")


class SoakModel(TrainableModel):
    def configure_encoders(self) -> Encoder:
        return FrozenMlp()

    def configure_caches(self) -> CacheConfig:
        return CacheConfig(CacheType.CPU)

    def configure_head(self, input_embedding_size: int) -> SkipConnectionHead:
        return SkipConnectionHead(input_embedding_size)

    def configure_loss(self) -> TripletLoss:
        return TripletLoss(mining="hard")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.model.head.parameters(), lr=1e-3)


def rss_mib() -> float:
    with open("/proc/self/statm") as handle:
        resident_pages = int(handle.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def memory() -> dict[str, float]:
    """RSS as is, RSS after glibc hands free heap pages back (so memory that is free but cached
    by the allocator is not mistaken for a leak), Python heap blocks and gc-tracked objects."""
    gc.collect()
    rss = rss_mib()
    _LIBC.malloc_trim(0)
    return {
        "rss_mib": round(rss, 2),
        "rss_trimmed_mib": round(rss_mib(), 2),
        "py_blocks": sys.getallocatedblocks(),
        "gc_objects": len(gc.get_objects()),
    }


class Probe(pl.Callback):
    """Samples memory at the warm-up epoch and at the last one; times every epoch."""

    def __init__(self, epochs: int, trace: bool):
        self.epochs, self.trace = epochs, trace
        self.samples: dict[int, dict[str, float]] = {}
        # preallocated: appending a float per epoch would itself grow the Python heap
        self.epoch_times = array("d", bytes(8 * epochs))
        self._epoch = 0
        self.snapshots: list[tracemalloc.Snapshot] = []
        self._started = 0.0

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._started = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.epoch_times[self._epoch] = time.perf_counter() - self._started
        self._epoch += 1
        epoch = trainer.current_epoch + 1
        if epoch in (WARMUP_EPOCH, self.epochs // 2, self.epochs):
            self.samples[epoch] = memory()
            if self.trace:
                self.snapshots.append(tracemalloc.take_snapshot())


def data() -> list[SimilarityGroupSample]:
    generator = torch.Generator().manual_seed(1)
    centres = torch.randn(GROUPS, DIM, generator=generator) * 2
    groups = torch.arange(SAMPLES) % GROUPS
    vectors = centres[groups] + torch.randn(SAMPLES, DIM, generator=generator)
    return [
        SimilarityGroupSample(obj=v, group=int(g)) for v, g in zip(vectors, groups, strict=True)
    ]


def bare_loop(rows: Tensor, groups: Tensor, epochs: int) -> tuple[float, dict[str, float]]:
    """Per-epoch seconds of a plain torch loop (same head, loss, batches) and memory after it."""
    torch.manual_seed(0)
    head, loss = SkipConnectionHead(HIDDEN), TripletLoss(mining="hard")
    optimizer = torch.optim.Adam(head.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    started = time.perf_counter()
    for _ in range(epochs):
        for idx in torch.randperm(len(rows), generator=generator).split(BATCH):
            optimizer.zero_grad()
            value = loss(head(rows[idx]), groups[idx])
            value.backward()
            optimizer.step()
    return (time.perf_counter() - started) / epochs, memory()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1000)
    parser.add_argument("--trace", action="store_true")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    # one intra-op thread: the workload is tiny, and on a shared 2-core machine two OpenMP
    # threads spin against each other (measured 20x slower per step under load)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    if args.trace:
        tracemalloc.start(25)
    samples = data()
    model = SoakModel()
    probe = Probe(args.epochs, args.trace)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=args.epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[probe],
    )
    start = memory()
    loader = GroupSimilarityDataLoader(samples, batch_size=BATCH, shuffle=True)
    Quaterion.fit(model, trainer, loader)
    end = memory()

    with torch.no_grad():
        rows = FrozenMlp()(torch.stack([s.obj for s in samples]))
    groups = torch.tensor([s.group for s in samples])
    bare_epochs = max(20, args.epochs // 10)
    bare_epoch_s, _ = bare_loop(rows, groups, bare_epochs)

    warm, last = probe.samples[WARMUP_EPOCH], probe.samples[args.epochs]
    half = probe.samples[args.epochs // 2]
    steady = sorted(probe.epoch_times[WARMUP_EPOCH:])
    epoch_s = steady[len(steady) // 2]
    result = {
        "bench": "soak",
        "epochs": args.epochs,
        "steps": trainer.global_step,
        "samples": SAMPLES,
        "batch_size": BATCH,
        "start": start,
        "warm_epoch": WARMUP_EPOCH,
        "warm": warm,
        "half": half,
        "last": last,
        "end": end,
        "rss_growth_mib": round(last["rss_mib"] - warm["rss_mib"], 2),
        "rss_growth_second_half_mib": round(last["rss_mib"] - half["rss_mib"], 2),
        "rss_trimmed_growth_mib": round(last["rss_trimmed_mib"] - warm["rss_trimmed_mib"], 2),
        "rss_trimmed_growth_second_half_mib": round(
            last["rss_trimmed_mib"] - half["rss_trimmed_mib"], 2
        ),
        "py_blocks_growth": last["py_blocks"] - warm["py_blocks"],
        "gc_objects_growth": last["gc_objects"] - warm["gc_objects"],
        "epoch_s_median": round(epoch_s, 5),
        "epoch_s_first": round(probe.epoch_times[0], 5),
        "epoch_s_last": round(probe.epoch_times[-1], 5),
        "bare_epoch_s": round(bare_epoch_s, 5),
        "bare_epochs": bare_epochs,
        "epoch_ratio": round(epoch_s / bare_epoch_s, 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    if args.trace and len(probe.snapshots) >= 2:
        growth = probe.snapshots[-1].compare_to(probe.snapshots[0], "traceback")
        for stat in growth[:8]:
            print(f"{stat.size_diff / 1024:+.1f} KiB {stat.count_diff:+d} blocks", file=sys.stderr)
            for line in stat.traceback.format()[-6:]:
                print("   ", line, file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
