"""GPU benchmark of the embedding cache: one run, one JSON line on stdout.

The workload of bench/bench_cache.py (20,000 samples in 100 groups, the frozen random MLP
256 -> 2048 x4 -> 384, SkipConnectionHead, TripletLoss, Adam), imported from there, on a CUDA
trainer with `CacheConfig(CacheType.GPU)`. Measured in this run, on the same data:
1. cache fill throughput (`setup_cache`) vs the bare encoder's own inference loop over the same
   data and fill batch size, sandwiched: bare, fill, bare (the mean of both bare runs counts);
   also the encoder over inputs already on the device (pure compute);
2. cached epochs of `Quaterion.fit` at batch 128 and 1024 vs two floors over the same
   device-resident embeddings with the same head, loss, optimiser and batch: a bare torch loop
   and a minimal LightningModule fed pre-built device tensor batches;
3. that the cached rows live on the device (a CUDA tensor under `--device cuda`);
4. peak device memory (torch.cuda.max_memory_allocated, reset before each variant) and peak
   resident memory (VmHWM, likewise).
Every timer synchronises the device on both ends; one warm-up pass of the encoder and of each
training variant's first epoch come first. Epoch times are the median of the epochs after the
first (wall seconds: the device works asynchronously, so process CPU time says little here).

    python bench/bench_cache_gpu.py [--device cuda] [--epochs 5] [--out FILE]
    python bench/bench_cache_gpu.py --device cpu --small    # smoke test without a GPU
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_cache import (  # noqa: E402  (bench/ is not a package: import by path)
    BATCH,
    BIG_BATCH,
    DIM_OUT,
    FILL_BATCH,
    LR,
    Clock,
    PeakMemory,
    epoch_timer,
    group_loader,
    make_workload,
    steady,
    user_classes,
)

SMALL_SAMPLES = 1024  # --small: enough for a few batches at both batch sizes


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def synced_clock(device: torch.device, run: Callable[[], Any]) -> tuple[Clock, Any]:
    """Time `run()` with the device idle at both ends."""
    sync(device)
    with Clock() as clock:
        result = run()
        sync(device)
    return clock, result


def synced_epoch_timer(device: torch.device) -> Any:
    """bench_cache's epoch timer, with the device synchronised at each epoch's start and end."""
    import pytorch_lightning as pl

    class SyncedEpochTimer(pl.Callback):
        def __init__(self):
            self.inner = epoch_timer()
            self.epochs = self.inner.epochs

        def on_train_epoch_start(self, trainer, pl_module):
            sync(device)
            self.inner.on_train_epoch_start(trainer, pl_module)

        def on_train_epoch_end(self, trainer, pl_module):
            sync(device)
            self.inner.on_train_epoch_end(trainer, pl_module)

    return SyncedEpochTimer()


def device_trainer(device: torch.device, epochs: int, callbacks: list) -> Any:
    import pytorch_lightning as pl

    return pl.Trainer(
        accelerator="gpu" if device.type == "cuda" else "cpu",
        devices=1,
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=callbacks,
    )


def device_model_class(device: torch.device) -> tuple[type, type]:
    """bench_cache's encoder and model, with the cache on the device (`CacheType.GPU` on CUDA)."""
    from quaterion.train.cache import CacheConfig, CacheType

    encoder_class, bench_model = user_classes()
    cache_type = CacheType.GPU if device.type == "cuda" else CacheType.CPU

    class DeviceCacheModel(bench_model):
        def __init__(self):
            super().__init__(cache=True)

        def configure_caches(self):
            return CacheConfig(cache_type, batch_size=FILL_BATCH)

    return encoder_class, DeviceCacheModel


# ---- 1. fill throughput ----


def bare_encoder_pass(encoder: Any, vectors: torch.Tensor, device: torch.device) -> torch.Tensor:
    """The encoder's own inference loop: same objects, collate and batch size as the fill, the
    batches copied to the device (pinned, like the fill loader); rows stay on the device."""
    loader = torch.utils.data.DataLoader(
        list(vectors),
        batch_size=FILL_BATCH,
        collate_fn=encoder.get_collate_fn(),
        pin_memory=device.type == "cuda",
    )
    with torch.inference_mode():
        rows = [encoder(batch.to(device, non_blocking=True)) for batch in loader]
    return torch.cat(rows).clone()


def resident_encoder_pass(encoder: Any, vectors: torch.Tensor) -> None:
    """The encoder over inputs already on its device: the compute alone."""
    with torch.inference_mode():
        for batch in vectors.split(FILL_BATCH):
            encoder(batch)


def fill_cache(model_class: type, data: dict, device: torch.device) -> Any:
    """`setup_cache` over the training split, as `Quaterion.fit` runs it; the filled model."""
    model = model_class()
    loader = group_loader(data["train_x"], data["train_g"], BATCH)
    model.setup_dataloader(loader)
    model.setup_cache(device_trainer(device, 1, []), loader, None)
    return model


# ---- 2. training epochs: the framework and its floors ----


def cached_fit_epochs(
    model_class: type, data: dict, batch_size: int, epochs: int, device: torch.device
) -> list[Clock]:
    from quaterion import Quaterion

    torch.manual_seed(0)
    timer = synced_epoch_timer(device)
    loader = group_loader(data["train_x"], data["train_g"], batch_size)
    Quaterion.fit(model_class(), device_trainer(device, epochs, [timer]), loader)
    return timer.epochs


def head_loss() -> tuple[torch.nn.Module, torch.nn.Module]:
    from quaterion.loss import TripletLoss
    from quaterion_models.heads import SkipConnectionHead

    return SkipConnectionHead(DIM_OUT), TripletLoss()


def bare_loop_epochs(
    rows: torch.Tensor, groups: torch.Tensor, batch_size: int, epochs: int
) -> list[Clock]:
    """Floor 1: a plain torch loop over device-resident embeddings and groups."""
    torch.manual_seed(0)
    head, loss_fn = head_loss()
    head.to(rows.device)
    optimizer = torch.optim.Adam(head.parameters(), lr=LR)

    def epoch() -> None:
        for indices in torch.randperm(len(rows), device=rows.device).split(batch_size):
            loss = loss_fn(embeddings=head(rows[indices]), groups=groups[indices])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    return [synced_clock(rows.device, epoch)[0] for _ in range(epochs)]


def lightning_floor_epochs(
    rows: torch.Tensor, groups: torch.Tensor, batch_size: int, epochs: int
) -> list[Clock]:
    """Floor 2: a minimal LightningModule fed pre-built batches already on the device."""
    import pytorch_lightning as pl

    class Floor(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.head, self.loss_fn = head_loss()

        def training_step(self, batch, batch_idx):
            vectors, batch_groups = batch
            return self.loss_fn(embeddings=self.head(vectors), groups=batch_groups)

        def configure_optimizers(self):
            return torch.optim.Adam(self.head.parameters(), lr=LR)

    class DeviceBatches:
        def __len__(self):
            return -(-len(rows) // batch_size)

        def __iter__(self):
            order = torch.randperm(len(rows), device=rows.device)
            return ((rows[i], groups[i]) for i in order.split(batch_size))

    torch.manual_seed(0)
    timer = synced_epoch_timer(rows.device)
    trainer = device_trainer(rows.device, epochs, [timer])
    trainer.fit(Floor(), train_dataloaders=DeviceBatches())
    return timer.epochs


# ---- the run ----


class Peaks:
    """Peak device and resident memory of each variant (both reset before it)."""

    def __init__(self, device: torch.device):
        self.device, self.rss = device, PeakMemory()
        self.gpu_mb: dict[str, float] = {}
        self.rss_mb: dict[str, float] = {}

    def track(self, name: str, run: Callable[[], Any]) -> Any:
        self.rss.reset()
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        result = run()
        self.rss_mb[name] = round(self.rss.peak_mb(), 1)
        if self.device.type == "cuda":
            self.gpu_mb[name] = round(torch.cuda.max_memory_allocated(self.device) / 2**20, 1)
        return result


def epoch_summary(clocks: list[Clock]) -> dict[str, Any]:
    return {
        "median_wall_s": steady(clocks)["median_wall_s"],
        "epoch_wall_s": [round(clock.wall, 4) for clock in clocks],
    }


def measure(data: dict, device: torch.device, epochs: int) -> dict[str, Any]:
    encoder_class, model_class = device_model_class(device)
    peaks = Peaks(device)
    samples = len(data["train_x"])
    encoder = encoder_class().to(device).eval()
    resident_inputs = data["train_x"].to(device)

    # warm-up: CUDA context, kernels and allocator, then 1. the sandwiched fill
    bare_encoder_pass(encoder, data["train_x"], device)
    resident_encoder_pass(encoder, resident_inputs)
    bare_first, rows = synced_clock(
        device, lambda: bare_encoder_pass(encoder, data["train_x"], device)
    )
    fill, filled = peaks.track("fill", lambda: synced_clock(
        device, lambda: fill_cache(model_class, data, device)
    ))  # fmt: skip
    bare_second, _ = synced_clock(
        device, lambda: bare_encoder_pass(encoder, data["train_x"], device)
    )
    resident, _ = synced_clock(device, lambda: resident_encoder_pass(encoder, resident_inputs))
    bare_wall = (bare_first.wall + bare_second.wall) / 2

    # 3. where the cached rows live
    cached_rows = filled.model.encoders["default"].rows()
    if device.type == "cuda":
        assert cached_rows.is_cuda, f"cached rows on {cached_rows.device}, expected cuda"
    rows_device = str(cached_rows.device)
    rows_diff = (cached_rows.to(rows.device) - rows).abs().max().item()
    del filled, cached_rows

    # 2. cached epochs and floors over the same device-resident embeddings
    groups = data["train_g"].to(device)
    variants: dict[str, Callable[[], list[Clock]]] = {}
    for batch in (BATCH, BIG_BATCH):
        variants |= {
            f"cached_fit_b{batch}": lambda b=batch: cached_fit_epochs(
                model_class, data, b, epochs, device
            ),
            f"bare_loop_b{batch}": lambda b=batch: bare_loop_epochs(rows, groups, b, epochs),
            f"lightning_floor_b{batch}": lambda b=batch: lightning_floor_epochs(
                rows, groups, b, epochs
            ),
        }
    epochs_of = {name: epoch_summary(peaks.track(name, run)) for name, run in variants.items()}
    median = {name: summary["median_wall_s"] for name, summary in epochs_of.items()}
    ratios = {}
    for batch in (BATCH, BIG_BATCH):
        cached = median[f"cached_fit_b{batch}"]
        ratios[f"cached_over_bare_loop_b{batch}"] = cached / median[f"bare_loop_b{batch}"]
        ratios[f"cached_over_lightning_floor_b{batch}"] = (
            cached / median[f"lightning_floor_b{batch}"]
        )

    return {
        "bare_encoder": {"wall_s": bare_wall, "rows_per_s": samples / bare_wall},
        "resident_encoder": {"wall_s": resident.wall, "rows_per_s": samples / resident.wall},
        "fill": {"wall_s": fill.wall, "rows_per_s": samples / fill.wall},
        "fill_over_bare_throughput": bare_wall / fill.wall,
        "fill_over_resident_throughput": resident.wall / fill.wall,
        "cache_rows_device": rows_device,
        "fill_rows_max_abs_diff_vs_bare": rows_diff,
        "epochs": epochs_of,
        **ratios,
        "peak_gpu_mb": peaks.gpu_mb,
        "peak_gpu_mb_overall": (
            round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
            if device.type == "cuda"
            else None
        ),
        "peak_rss_mb": peaks.rss_mb,
        "peak_rss_mb_process": round(PeakMemory().peak_mb(), 1),
    }


def write_atomic(path: str, text: str) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=target.parent, delete=False) as handle:
        handle.write(text)
    os.replace(handle.name, target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    parser.add_argument("--epochs", type=int, default=5, help="epochs of every training variant")
    parser.add_argument("--small", action="store_true", help=f"{SMALL_SAMPLES} samples, 3 epochs")
    parser.add_argument("--out", help="also write the JSON line to this file")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda needs a CUDA GPU; use --device cpu --small to smoke-test")
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    os.environ["QUATERION_PROGRESS"] = "0"
    warnings.filterwarnings("ignore")
    import pytorch_lightning  # noqa: F401  (its loggers exist once imported)

    for name in ("pytorch_lightning", "lightning", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.ERROR)

    data = make_workload()
    epochs = 3 if args.small else args.epochs
    if args.small:
        data = {name: values[:SMALL_SAMPLES] for name, values in data.items()}
    result = {
        "bench": "cache_gpu",
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "workload": {
            "train_samples": len(data["train_x"]),
            "encoder": "MLP 256-2048x4-384 (frozen)",
            "cache": "CacheType.GPU" if device.type == "cuda" else "CacheType.CPU",
            "fill_batch_size": FILL_BATCH,
            "epochs": epochs,
        },
        "ratios_use": "median wall seconds of the epochs after the first, device synchronised",
        **measure(data, device, epochs),
    }
    line = json.dumps(result)
    print(line)
    if args.out:
        write_atomic(args.out, line + "\n")


if __name__ == "__main__":
    main()
