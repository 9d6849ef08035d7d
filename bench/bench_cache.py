"""Benchmark of the embedding cache: one run, one JSON line on stdout.

Workload: 20,000 training samples in 100 groups (256-d vectors), an expensive frozen encoder
(a fixed random MLP 256 -> 2048 x4 -> 384), SkipConnectionHead, TripletLoss, batch 128, Adam.
Measured in this run, on the same data:
1. one uncached epoch vs a cached epoch of `Quaterion.fit`;
2. cache fill throughput (`setup_cache`, without and with `save_dir`) vs the bare encoder's own
   inference loop, sandwiched: bare, fill, bare (compared with the mean of the two bare runs);
3. the cached epoch vs two floors over the same precomputed embeddings, same head, loss,
   optimiser and batch size: a bare torch loop (batch 128 and 1024) and a minimal
   LightningModule fed pre-built tensor batches (batch 128; also once logging its loss like
   TrainableModel does);
4. the same user code (`user_classes`) fitted with the cache by this project and by the original
   Quaterion 0.1.35 (bench/original_cache_bench.py in .venv-original), each in its own process:
   cached epoch time, fill time, held-out R-precision;
5. peak resident memory of each variant (VmHWM, reset before each; the whole process for the
   framework runs).
Epochs are summarised by the fastest and the median epoch after the first. Ratios use the
fastest epoch's process CPU seconds, which other load on a shared machine disturbs far less
than wall seconds (both are reported, with medians). Progress bars, loggers, checkpointing and
model summaries are off everywhere.

    python bench/bench_cache.py [--epochs 8] [--threads 1] [--profile]

`--profile` prints a cProfile of three cached epochs (batch 128) to stderr instead.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import torch

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
ORIGINAL_PYTHON = ROOT / ".venv-original" / "bin" / "python"

N_TRAIN, N_HELD_OUT, N_GROUPS = 20_000, 2_000, 100
DIM_IN, HIDDEN, DIM_OUT = 256, 2048, 384
NOISE = 1.4  # per-coordinate noise around the group centres (raw held-out R-precision ~0.4)
BATCH, BIG_BATCH, FILL_BATCH = 128, 1024, 512
LR = 1e-2
FLOOR_EPOCHS = 4  # floors and batch-1024 runs: the first epoch is burn-in


# ---- workload (plain torch: shared by both frameworks) ----


def make_workload() -> dict[str, torch.Tensor]:
    """Train and held-out vectors [N, 256] with their groups [N]."""
    generator = torch.Generator().manual_seed(0)
    centres = torch.randn(N_GROUPS, DIM_IN, generator=generator)

    def draw(count: int) -> tuple[torch.Tensor, torch.Tensor]:
        groups = torch.arange(count) % N_GROUPS
        groups = groups[torch.randperm(count, generator=generator)]
        vectors = centres[groups] + NOISE * torch.randn(count, DIM_IN, generator=generator)
        return vectors, groups

    train_x, train_g = draw(N_TRAIN)
    held_x, held_g = draw(N_HELD_OUT)
    return {"train_x": train_x, "train_g": train_g, "held_x": held_x, "held_g": held_g}


def make_mlp() -> torch.nn.Sequential:
    """The frozen encoder network: fixed random weights, identical in every process."""
    with torch.random.fork_rng():
        torch.manual_seed(1234)
        layers: list[torch.nn.Module] = [torch.nn.Linear(DIM_IN, HIDDEN), torch.nn.ReLU()]
        for _ in range(3):
            layers += [torch.nn.Linear(HIDDEN, HIDDEN), torch.nn.ReLU()]
        net = torch.nn.Sequential(*layers, torch.nn.Linear(HIDDEN, DIM_OUT))
    for parameter in net.parameters():
        parameter.requires_grad = False
    return net.eval()


def stack_rows(batch: list[torch.Tensor]) -> torch.Tensor:
    return torch.stack(batch)


def r_precision(embeddings: torch.Tensor, groups: torch.Tensor) -> float:
    """Mean over queries of precision at R (R = other members of the query's group), cosine."""
    unit = torch.nn.functional.normalize(embeddings.float(), dim=1)
    similarity = unit @ unit.T
    similarity.fill_diagonal_(-float("inf"))
    relevant = (groups.unsqueeze(0) == groups.unsqueeze(1)).fill_diagonal_(False)
    counts = relevant.sum(dim=1)  # R per query
    ranked = similarity.argsort(dim=1, descending=True)
    hits = relevant.gather(1, ranked)  # relevance in rank order
    within_r = torch.arange(len(groups)).unsqueeze(0) < counts.unsqueeze(1)
    return ((hits & within_r).sum(dim=1) / counts).mean().item()


class PeakMemory:
    """Peak resident set size since `reset` (Linux clear_refs; else the process peak)."""

    def reset(self) -> None:
        try:
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            pass

    def peak_mb(self) -> float:
        try:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---- user code, written once against the public API (runs on both frameworks) ----


def user_classes() -> tuple[type, type]:
    """The encoder and TrainableModel a user would write; imports whichever quaterion is on
    the path (this project, or the original in its own venv)."""
    from quaterion import TrainableModel
    from quaterion.loss import TripletLoss
    from quaterion.train.cache import CacheConfig, CacheType
    from quaterion_models.encoders import Encoder
    from quaterion_models.heads import SkipConnectionHead

    class MLPEncoder(Encoder):
        def __init__(self):
            super().__init__()
            self.net = make_mlp()

        @property
        def trainable(self) -> bool:
            return False

        @property
        def embedding_size(self) -> int:
            return DIM_OUT

        def get_collate_fn(self):
            return stack_rows

        def forward(self, batch):
            return self.net(batch)

        def save(self, output_path: str) -> None:
            pass

        @classmethod
        def load(cls, input_path: str):
            return cls()

    class BenchModel(TrainableModel):
        def __init__(self, cache: bool, save_dir: str | None = None):
            self.cache, self.save_dir = cache, save_dir
            super().__init__()

        def configure_encoders(self):
            return MLPEncoder()

        def configure_caches(self):
            if not self.cache:
                return None
            return CacheConfig(CacheType.AUTO, batch_size=FILL_BATCH, save_dir=self.save_dir)

        def configure_head(self, input_embedding_size):
            return SkipConnectionHead(input_embedding_size)

        def configure_loss(self):
            return TripletLoss()

        def configure_optimizers(self):
            return torch.optim.Adam(self.model.head.parameters(), lr=LR)

    return MLPEncoder, BenchModel


def quiet_trainer(epochs: int, callbacks: list) -> Any:
    import pytorch_lightning as pl

    return pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=callbacks,
    )


class Clock:
    """Wall and process-CPU seconds of a block (`with Clock() as clock: ...`)."""

    def __enter__(self) -> Clock:
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu


def epoch_timer() -> Any:
    """A Lightning callback with the wall and CPU seconds of each training epoch."""
    import pytorch_lightning as pl

    class EpochTimer(pl.Callback):
        def __init__(self):
            self.epochs: list[Clock] = []

        def on_train_epoch_start(self, trainer, pl_module):
            self.epochs.append(Clock().__enter__())

        def on_train_epoch_end(self, trainer, pl_module):
            self.epochs[-1].__exit__()

    return EpochTimer()


def steady(clocks: list[Clock]) -> dict[str, float]:
    """Fastest and median epoch after the first (burn-in), in wall and CPU seconds. Ratios use
    the fastest CPU time: on a shared machine other work only ever adds time, so the minimum
    is the least disturbed estimate of what an epoch costs."""
    later = clocks[1:] or clocks
    return {
        "cpu_s": min(clock.cpu for clock in later),
        "wall_s": min(clock.wall for clock in later),
        "median_cpu_s": statistics.median(clock.cpu for clock in later),
        "median_wall_s": statistics.median(clock.wall for clock in later),
    }


def group_loader(vectors: torch.Tensor, groups: torch.Tensor, batch_size: int) -> Any:
    from quaterion.dataset import GroupSimilarityDataLoader, SimilarityGroupSample

    samples = [
        SimilarityGroupSample(obj=vector, group=int(group))
        for vector, group in zip(vectors, groups.tolist(), strict=True)
    ]
    return GroupSimilarityDataLoader(samples, batch_size=batch_size, shuffle=True)


def framework_run(epochs: int, threads: int) -> dict[str, Any]:
    """Fit the user code with the cache on whichever quaterion is importable; used by the
    child processes of both frameworks."""
    import pytorch_lightning as pl

    from quaterion import Quaterion

    torch.set_num_threads(threads)
    data = make_workload()
    pl.seed_everything(0, workers=False)
    _, model_class = user_classes()
    model = model_class(cache=True)
    timer = epoch_timer()
    loader = group_loader(data["train_x"], data["train_g"], BATCH)
    with Clock() as fit:
        Quaterion.fit(model, quiet_trainer(epochs, [timer]), loader)
    embeddings = model.model.encode(list(data["held_x"]), batch_size=FILL_BATCH, to_numpy=False)
    return {
        "cached_epoch": steady(timer.epochs),
        "epoch_wall_s": [round(clock.wall, 3) for clock in timer.epochs],
        "fill_and_setup_wall_s": fit.wall - sum(clock.wall for clock in timer.epochs),
        "r_precision": r_precision(torch.as_tensor(embeddings), data["held_g"]),
        "peak_rss_mb": PeakMemory().peak_mb(),  # this process's whole run
    }


# ---- measurements of this project, in this process ----


def bare_encoder_pass(encoder: Any, vectors: torch.Tensor) -> tuple[Clock, torch.Tensor]:
    """The encoder's own inference loop over the same objects (same batch size and collate)."""
    loader = torch.utils.data.DataLoader(
        list(vectors), batch_size=FILL_BATCH, collate_fn=encoder.get_collate_fn()
    )
    with Clock() as clock, torch.inference_mode():
        rows = torch.cat([encoder(batch) for batch in loader])
    return clock, rows.clone()


def timed_fill(model_class: type, data: dict, save_dir: str | None) -> tuple[Clock, Any]:
    """`setup_cache` over the training split (the fill pass), as `Quaterion.fit` runs it."""
    model = model_class(cache=True, save_dir=save_dir)
    loader = group_loader(data["train_x"], data["train_g"], BATCH)
    model.setup_dataloader(loader)
    trainer = quiet_trainer(1, [])
    with Clock() as clock:
        model.setup_cache(trainer, loader, None)
    return clock, model


def bare_loop_epochs(rows: torch.Tensor, groups: torch.Tensor, batch_size: int) -> list[Clock]:
    """Floor 1: plain torch training loop over precomputed embeddings."""
    from quaterion.loss import TripletLoss
    from quaterion_models.heads import SkipConnectionHead

    torch.manual_seed(0)
    head, loss_fn = SkipConnectionHead(DIM_OUT), TripletLoss()
    optimizer = torch.optim.Adam(head.parameters(), lr=LR)
    clocks = []
    for _ in range(FLOOR_EPOCHS):
        with Clock() as clock:
            for indices in torch.randperm(len(rows)).split(batch_size):
                loss = loss_fn(embeddings=head(rows[indices]), groups=groups[indices])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        clocks.append(clock)
    return clocks


def lightning_floor_epochs(
    rows: torch.Tensor, groups: torch.Tensor, batch_size: int, log_loss: bool
) -> list[Clock]:
    """Floor 2: a minimal LightningModule fed pre-built tensor batches; with `log_loss` it also
    logs its loss every step, as TrainableModel does (`train_loss`)."""
    import pytorch_lightning as pl

    from quaterion.loss import TripletLoss
    from quaterion_models.heads import SkipConnectionHead

    class Floor(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.head, self.loss_fn = SkipConnectionHead(DIM_OUT), TripletLoss()

        def training_step(self, batch, batch_idx):
            vectors, batch_groups = batch
            loss = self.loss_fn(embeddings=self.head(vectors), groups=batch_groups)
            if log_loss:
                self.log("train_loss", loss, prog_bar=True, batch_size=len(batch_groups))
            return loss

        def configure_optimizers(self):
            return torch.optim.Adam(self.head.parameters(), lr=LR)

    class Batches:
        def __init__(self):
            order = torch.randperm(len(rows))
            self.batches = [(rows[i], groups[i]) for i in order.split(batch_size)]

        def __len__(self):
            return len(self.batches)

        def __iter__(self):
            return iter(self.batches)

    torch.manual_seed(0)
    timer = epoch_timer()
    quiet_trainer(FLOOR_EPOCHS, [timer]).fit(Floor(), train_dataloaders=Batches())
    return timer.epochs


def cached_fit_epochs(
    model_class: type, data: dict, batch_size: int, epochs: int, save_dir: str
) -> list[Clock]:
    """Epochs of `Quaterion.fit` with the cache (already stored in `save_dir`)."""
    from quaterion import Quaterion

    torch.manual_seed(0)
    model = model_class(cache=True, save_dir=save_dir)
    timer = epoch_timer()
    loader = group_loader(data["train_x"], data["train_g"], batch_size)
    Quaterion.fit(model, quiet_trainer(epochs, [timer]), loader)
    return timer.epochs


def uncached_fit_epoch(model_class: type, data: dict) -> Clock:
    from quaterion import Quaterion

    torch.manual_seed(0)
    timer = epoch_timer()
    loader = group_loader(data["train_x"], data["train_g"], BATCH)
    Quaterion.fit(model_class(cache=False), quiet_trainer(1, [timer]), loader)
    return timer.epochs[0]


def run_child(command: list[str], env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(command, env=env, cwd=BENCH_DIR, capture_output=True, text=True)
    if done.returncode != 0:
        return {"error": done.stderr[-2000:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def framework_comparison(epochs: int, threads: int, rounds: int = 2) -> dict[str, Any]:
    """Ours and the original, each fitting the same user code in fresh processes, alternately
    (`rounds` times each, so drifting load on the machine meets both); the fastest epoch of all
    rounds counts, R-precision comes from the first round."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    options = ["--epochs", str(epochs), "--threads", str(threads)]
    commands = {
        "ours": ([sys.executable, str(Path(__file__)), "--framework-run", *options],
                 dict(env, PYTHONPATH=str(ROOT))),
        "original": ([str(ORIGINAL_PYTHON), "-P", str(BENCH_DIR / "original_cache_bench.py"),
                      *options], env),
    }  # fmt: skip
    if not ORIGINAL_PYTHON.exists():
        return {"error": f"{ORIGINAL_PYTHON} missing: run bash bench/original_env.sh"}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in commands}
    for _ in range(rounds):
        for name, (command, child_env) in commands.items():
            runs[name].append(run_child(command, child_env))
    errors = {name: run["error"] for name, done in runs.items() for run in done if "error" in run}
    if errors:
        return {"error": errors}
    result: dict[str, Any] = {}
    for name, done in runs.items():
        result[name] = {
            "cached_epoch_cpu_s": min(run["cached_epoch"]["cpu_s"] for run in done),
            "cached_epoch_wall_s": min(run["cached_epoch"]["wall_s"] for run in done),
            "cached_epoch_median_cpu_s": [run["cached_epoch"]["median_cpu_s"] for run in done],
            "fill_and_setup_wall_s": [round(run["fill_and_setup_wall_s"], 2) for run in done],
            "r_precision": done[0]["r_precision"],
            "peak_rss_mb": max(run["peak_rss_mb"] for run in done),
        }
    ours, original = result["ours"], result["original"]
    result["cached_epoch_speedup_vs_original"] = (
        original["cached_epoch_cpu_s"] / ours["cached_epoch_cpu_s"]
    )
    result["cached_epoch_speedup_vs_original_wall"] = (
        original["cached_epoch_wall_s"] / ours["cached_epoch_wall_s"]
    )
    result["r_precision_diff"] = abs(ours["r_precision"] - original["r_precision"])
    return result


def profile_cached_epoch(data: dict, save_dir: str) -> None:
    import cProfile
    import pstats

    from quaterion import Quaterion

    _, model_class = user_classes()
    cached_fit_epochs(model_class, data, BATCH, 1, save_dir)  # fill the store
    model = model_class(cache=True, save_dir=save_dir)
    loader = group_loader(data["train_x"], data["train_g"], BATCH)
    profiler = cProfile.Profile()
    profiler.enable()
    Quaterion.fit(model, quiet_trainer(3, []), loader)
    profiler.disable()
    pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(35)


def measure(data: dict, epochs: int, save_dir: str) -> dict[str, Any]:
    """Every in-process variant; peak memory is reset before each."""
    memory = PeakMemory()
    peaks: dict[str, float] = {}
    encoder_class, model_class = user_classes()

    def track_peak(name: str, run: Any) -> Any:
        memory.reset()
        result = run()
        peaks[name] = round(memory.peak_mb(), 1)
        return result

    # 2. fill throughput, sandwiched between two runs of the bare encoder
    encoder = encoder_class()
    bare_first, rows = bare_encoder_pass(encoder, data["train_x"])
    fill, filled = track_peak("fill", lambda: timed_fill(model_class, data, None))
    bare_second, _ = bare_encoder_pass(encoder, data["train_x"])
    stored_fill, _ = track_peak("fill_with_store", lambda: timed_fill(model_class, data, save_dir))
    bare_cpu = (bare_first.cpu + bare_second.cpu) / 2
    bare_wall = (bare_first.wall + bare_second.wall) / 2
    cached_rows = filled.model.encoders["default"].rows()

    # 1. the uncached epoch
    uncached = track_peak("uncached_fit", lambda: uncached_fit_epoch(model_class, data))

    # 3. floors over the same precomputed embeddings, measured before and after the cached
    # fits (fastest of both; medians averaged), so drifting load affects both sides alike
    groups = data["train_g"]
    floor_runs = {
        "bare_loop_b128": lambda: bare_loop_epochs(rows, groups, BATCH),
        "bare_loop_b1024": lambda: bare_loop_epochs(rows, groups, BIG_BATCH),
        "lightning_floor_b128": lambda: lightning_floor_epochs(rows, groups, BATCH, False),
        "lightning_floor_logging_b128": lambda: lightning_floor_epochs(rows, groups, BATCH, True),
    }
    floors_before = {name: steady(track_peak(name, run)) for name, run in floor_runs.items()}

    # 1. the cached epochs (batch 128, and 1024 for the bare-loop comparison)
    cached = steady(
        track_peak(
            "cached_fit_b128", lambda: cached_fit_epochs(model_class, data, BATCH, epochs, save_dir)
        )
    )
    cached_1024 = steady(
        track_peak(
            "cached_fit_b1024",
            lambda: cached_fit_epochs(model_class, data, BIG_BATCH, FLOOR_EPOCHS, save_dir),
        )
    )
    floors_after = {name: steady(run()) for name, run in floor_runs.items()}
    floors = {
        name: {
            unit: min(floors_before[name][unit], floors_after[name][unit])
            if unit in ("cpu_s", "wall_s")
            else (floors_before[name][unit] + floors_after[name][unit]) / 2
            for unit in floors_before[name]
        }
        for name in floor_runs
    }
    bare_128, bare_1024 = floors["bare_loop_b128"], floors["bare_loop_b1024"]
    lightning_128 = floors["lightning_floor_b128"]
    lightning_logged_128 = floors["lightning_floor_logging_b128"]
    return {
        "uncached_epoch": {"wall_s": uncached.wall, "cpu_s": uncached.cpu},
        "cached_epoch_b128": cached,
        "uncached_over_cached": uncached.cpu / cached["cpu_s"],
        "bare_encoder": {
            "wall_s": bare_wall,
            "cpu_s": bare_cpu,
            "rows_per_cpu_s": N_TRAIN / bare_cpu,
        },
        "fill": {"wall_s": fill.wall, "cpu_s": fill.cpu, "rows_per_cpu_s": N_TRAIN / fill.cpu},
        "fill_over_bare_throughput": bare_cpu / fill.cpu,  # target >= 0.9
        "fill_over_bare_throughput_wall": bare_wall / fill.wall,
        "fill_with_store": {"wall_s": stored_fill.wall, "cpu_s": stored_fill.cpu},
        "fill_with_store_over_bare_throughput": bare_cpu / stored_fill.cpu,
        "fill_matches_bare_rows": bool(torch.allclose(cached_rows, rows, atol=1e-5)),
        "bare_loop_b128": bare_128,
        "lightning_floor_b128": lightning_128,
        "lightning_floor_logging_b128": lightning_logged_128,
        "cached_over_lightning_floor_b128": cached["cpu_s"] / lightning_128["cpu_s"],  # <= 1.1
        "cached_over_lightning_floor_logging_b128": cached["cpu_s"] / lightning_logged_128["cpu_s"],
        "cached_over_bare_loop_b128": cached["cpu_s"] / bare_128["cpu_s"],
        "bare_loop_b1024": bare_1024,
        "cached_epoch_b1024": cached_1024,
        "cached_over_bare_loop_b1024": cached_1024["cpu_s"] / bare_1024["cpu_s"],  # <= 1.15
        "peak_rss_mb": peaks,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8, help="epochs of the cached fits")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads in every variant (1: robust on a shared machine, where 2 threads "
        "turn every small op into a wait for a busy core)",
    )
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--framework-run", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ["QUATERION_PROGRESS"] = "0"
    sys.path.insert(0, str(ROOT))
    if args.framework_run:
        print(json.dumps(framework_run(args.epochs, args.threads)))
        return
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    for name in ("pytorch_lightning", "lightning", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.ERROR)

    data = make_workload()
    save_dir = tempfile.mkdtemp(prefix="bench_cache_")
    if args.profile:
        profile_cached_epoch(data, save_dir)
        return
    load_start = os.getloadavg()
    result = {
        "bench": "cache",
        "workload": {
            "train_samples": N_TRAIN,
            "groups": N_GROUPS,
            "encoder": "MLP 256-2048x4-384",
            "head": "SkipConnectionHead",
            "loss": "TripletLoss",
            "batch_size": BATCH,
            "fill_batch_size": FILL_BATCH,
            "cached_epochs": args.epochs,
            "torch_threads": torch.get_num_threads(),
            "cpus": os.cpu_count(),
        },  # fmt: skip
        "ratios_use": "fastest epoch's process CPU seconds (least disturbed by other load)",
        **measure(data, args.epochs, save_dir),
        # 4. the same user code on this project and on the original, in fresh processes
        "frameworks": framework_comparison(args.epochs, args.threads),
        "load_avg_start": [round(x, 2) for x in load_start],
        "load_avg_end": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
