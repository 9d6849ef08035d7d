"""A cache past RAM: a cached epoch from the memory-mapped `save_dir` store vs the in-memory
store, one run, one JSON line on stdout.

Workload: `--rows` objects (default 1,300,000: a 384-d float32 table of 1.9 GiB on disk) in
100 groups; each object is its index, and a cheap frozen stand-in encoder maps it to a 384-d
vector (its group's centre plus a fixed noise row), so the fill costs little beyond the
framework's own per-object work. SkipConnectionHead, SoftmaxLoss, Adam, batch `--batch`,
`Quaterion.fit` with `CacheConfig(save_dir=...)` on the CPU. Two fresh processes, in turn:
1. `in_memory`: an empty `save_dir`; the fill encodes every row, writes the store, and the
   epochs train from the rows it computed (a [rows, 384] tensor in anonymous memory);
2. `mmap`: the same `save_dir` again; the stored rows are checked and opened memory-mapped,
   and the epochs read them from the page cache.
Each reports: RssAnon (anonymous resident memory) just before `Quaterion.fit` (the model's and
the data's own), its peak during the cached epochs sampled after every step, and the growth
between them (target for `mmap`: under 300 MB); RssFile's peak (the mapped file's pages);
whether the store file is mapped (/proc/self/maps); setup (fill or load) and epoch times; peak
resident memory (VmHWM). Ratios: `mmap` epoch over `in_memory` epoch (fastest epoch's process
CPU seconds, wall beside them).

    python bench/bench_cache_mmap.py [--rows 1300000] [--epochs 1] [--batch 4096]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_cache import (  # noqa: E402  (bench/ is not a package)
    Clock,
    PeakMemory,
    epoch_timer,
    quiet_trainer,
    run_child,
    steady,
)

from quaterion_models.encoders import Encoder  # noqa: E402

DIM, GROUPS, NOISE_ROWS = 384, 100, 65_536
ROOT = Path(__file__).resolve().parent.parent


def status_mb(field: str) -> float:
    """A `/proc/self/status` field (kB) in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def index_batch(batch: list[int]) -> torch.Tensor:
    return torch.tensor(batch)


class StandInEncoder(Encoder):
    """Frozen: object index i -> centre of group i % 100 + a fixed noise row (384-d)."""

    def __init__(self):
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.centres = torch.nn.Parameter(torch.randn(GROUPS, DIM, generator=generator), False)
        noise = 1.5 * torch.randn(NOISE_ROWS, DIM, generator=generator)
        self.noise = torch.nn.Parameter(noise, requires_grad=False)

    @property
    def trainable(self) -> bool:
        return False

    @property
    def embedding_size(self) -> int:
        return DIM

    def get_collate_fn(self) -> Any:
        return index_batch

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return self.centres[batch % GROUPS] + self.noise[(batch * 7919) % NOISE_ROWS]

    def save(self, output_path: str) -> None:
        raise NotImplementedError("a benchmark stand-in")

    @classmethod
    def load(cls, input_path: str) -> StandInEncoder:
        raise NotImplementedError("a benchmark stand-in")


def child(rows: int, epochs: int, batch: int, save_dir: str) -> dict[str, Any]:
    """One `Quaterion.fit` with the store in `save_dir` (filled and written, or reopened)."""
    import pytorch_lightning as pl

    from quaterion import Quaterion, TrainableModel
    from quaterion.dataset import GroupSimilarityDataLoader, SimilarityGroupSample
    from quaterion.loss import SoftmaxLoss
    from quaterion.train.cache import CacheConfig, CacheType
    from quaterion_models.heads import SkipConnectionHead

    class MmapModel(TrainableModel):
        def configure_encoders(self):
            return StandInEncoder()

        def configure_caches(self):
            return CacheConfig(CacheType.AUTO, batch_size=8192, save_dir=save_dir)

        def configure_head(self, input_embedding_size):
            return SkipConnectionHead(input_embedding_size)

        def configure_loss(self):
            return SoftmaxLoss(DIM, GROUPS)

        def configure_optimizers(self):
            return torch.optim.Adam([*self.model.parameters(), *self.loss.parameters()], 1e-3)

    class RssSampler(pl.Callback):
        """Peak RssAnon and RssFile during the training epochs, read after every step."""

        def __init__(self):
            self.anon = self.file = 0.0
            self.mapped = False

        def _sample(self) -> None:
            self.anon = max(self.anon, status_mb("RssAnon"))
            self.file = max(self.file, status_mb("RssFile"))

        def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
            self._sample()
            self.mapped = "train.safetensors" in Path("/proc/self/maps").read_text()

        def on_train_batch_end(self, *args: Any) -> None:
            self._sample()

    torch.manual_seed(0)
    samples = [SimilarityGroupSample(obj=i, group=i % GROUPS) for i in range(rows)]
    loader = GroupSimilarityDataLoader(samples, batch_size=batch, shuffle=True)
    model = MmapModel()
    timer, sampler = epoch_timer(), RssSampler()
    memory = PeakMemory()
    memory.reset()
    base = status_mb("RssAnon")
    with Clock() as fit:
        Quaterion.fit(model, quiet_trainer(epochs, [timer, sampler]), loader)
    return {
        "rss_anon_before_fit_mb": round(base, 1),
        "rss_anon_peak_in_epochs_mb": round(sampler.anon, 1),
        "rss_anon_growth_mb": round(sampler.anon - base, 1),
        "rss_file_peak_in_epochs_mb": round(sampler.file, 1),
        "store_file_mapped": sampler.mapped,
        "setup_wall_s": round(fit.wall - sum(clock.wall for clock in timer.epochs), 2),
        "epochs_wall_s": [round(clock.wall, 2) for clock in timer.epochs],
        "epochs_cpu_s": [round(clock.cpu, 2) for clock in timer.epochs],
        "epoch": steady(timer.epochs),
        "peak_rss_mb": round(memory.peak_mb(), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_300_000, help="cached rows (384 float32)")
    parser.add_argument("--epochs", type=int, default=1, help="cached epochs per variant")
    parser.add_argument("--batch", type=int, default=4096, help="training batch size")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ["QUATERION_PROGRESS"] = "0"
    if args.child:
        torch.set_num_threads(1)
        warnings.filterwarnings("ignore")
        for name in ("pytorch_lightning", "lightning", "lightning.pytorch"):
            logging.getLogger(name).setLevel(logging.ERROR)
        print(json.dumps(child(args.rows, args.epochs, args.batch, args.child)))
        return
    load_start = os.getloadavg()
    save_dir = tempfile.mkdtemp(prefix="bench_cache_mmap_")
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    command = [sys.executable, str(Path(__file__)), "--rows", str(args.rows), "--epochs",
               str(args.epochs), "--batch", str(args.batch), "--child", save_dir]  # fmt: skip
    try:
        runs = {name: run_child(command, env) for name in ("in_memory", "mmap")}
        stored = sum(path.stat().st_size for path in Path(save_dir).rglob("*.safetensors"))
    finally:
        shutil.rmtree(save_dir, ignore_errors=True)
    result: dict[str, Any] = {
        "bench": "cache_mmap",
        "workload": {
            "rows": args.rows,
            "dim": DIM,
            "stored_mb": round(stored / 2**20, 1),
            "batch_size": args.batch,
            "epochs": args.epochs,
            "encoder": "frozen stand-in (index -> group centre + noise row)",
            "head": "SkipConnectionHead",
            "loss": "SoftmaxLoss",
            "torch_threads": 1,
            "cpus": os.cpu_count(),
        },
        **runs,
    }
    if not any("error" in run for run in runs.values()):
        memory, mapped = runs["in_memory"], runs["mmap"]
        result["mmap_over_in_memory_epoch"] = mapped["epoch"]["cpu_s"] / memory["epoch"]["cpu_s"]
        result["mmap_over_in_memory_epoch_wall"] = (
            mapped["epoch"]["wall_s"] / memory["epoch"]["wall_s"]
        )
        result["mmap_rss_anon_growth_under_300mb"] = mapped["rss_anon_growth_mb"] < 300
    result["load_avg_start"] = [round(x, 2) for x in load_start]
    result["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
