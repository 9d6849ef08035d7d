"""Benchmark of the chunked retrieval engine (quaterion.eval.retrieval); prints ONE JSON line.

Sections, each selectable on its own:
  --scale    100,000 x 384 vectors in 1,000 groups: every metric in one pass, against the bare
             baseline (the same chunked matrix product + top-k) measured in the same run.
  --compare  20,000 x 384 vectors (CPU): ours against the original Quaterion (RetrievalRPrecision
             and Evaluator + GroupSampler, run in .venv-original from bench/original_env.sh) and
             against pytorch-metric-learning's AccuracyCalculator: time, peak memory, values.
  --million  1,000,000 x 128 vectors (slow on a CPU: --queries ranks a sample of queries
             against all vectors, and the full time is extrapolated).
  --original the ORIGINAL API on the --scale data: Evaluator + GroupSampler(sample_size=-1) +
             RetrievalRPrecision + RetrievalPrecision(k=1) + RetrievalReciprocalRank, end to end
             from a list of samples (encoding by an identity encoder included), against the bare
             baseline in the same run; then the same metrics through PairSampler on 50,000 pairs
             (100,000 objects) of the same vectors.
  --callback RetrievalMetricsCallback on the cache benchmark's workload (bench_cache.py: 20,000
             training samples, cached frozen MLP, batch 128): its cost per epoch (keeping the
             batches' embeddings and ranking the split) against the rest of the epoch (training
             steps and validation forward passes), on the 2,000 held-out samples and on a
             20,000-sample split.
Peak memory is the resident-set high-water mark above what was in use before each measured call
(the counter is reset through /proc/self/clear_refs), or CUDA's peak allocation on a GPU.

    python bench/bench_eval.py --scale [--compare] [--million --queries 5000] [--original]
        [--callback] [--device cuda]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_cache, for --callback

from quaterion.dataset import SimilarityGroupSample, SimilarityPairSample  # noqa: E402
from quaterion.eval.evaluator import Evaluator  # noqa: E402
from quaterion.eval.group import GroupRetrievalMetrics, RetrievalRPrecision  # noqa: E402
from quaterion.eval.pair import RetrievalPrecision, RetrievalReciprocalRank  # noqa: E402
from quaterion.eval.retrieval import DEFAULT_BLOCK_ELEMENTS, retrieval_metrics  # noqa: E402
from quaterion.eval.samplers.group_sampler import GroupSampler  # noqa: E402
from quaterion.eval.samplers.pair_sampler import PairSampler  # noqa: E402
from quaterion_models import SimilarityModel  # noqa: E402
from quaterion_models.encoders import Encoder  # noqa: E402
from quaterion_models.heads import EmptyHead  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ORIGINAL_PYTHON = ROOT / ".venv-original" / "bin" / "python"


class IdentityEncoder(Encoder):
    """Records are embedding rows already: encoding costs only the batching."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    @property
    def trainable(self) -> bool:
        return False

    @property
    def embedding_size(self) -> int:
        return self.dim

    def get_collate_fn(self) -> Callable[[list], torch.Tensor]:
        return torch.stack

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return batch


def clustered(
    num: int,
    dim: int,
    num_groups: int,
    seed: int,
    device: str,
    noise: float,
    equal_groups: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded vectors: unit-normal group centres plus ``noise`` x unit-normal noise (made in
    slices to keep memory flat); groups drawn at random, or all of the same size."""
    generator = torch.Generator().manual_seed(seed)
    centres = torch.randn(num_groups, dim, generator=generator)
    if equal_groups:
        groups = (torch.arange(num) % num_groups)[torch.randperm(num, generator=generator)]
    else:
        groups = torch.randint(0, num_groups, (num,), generator=generator)
    embeddings = torch.empty(num, dim)
    for start in range(0, num, 65536):
        rows = slice(start, start + 65536)
        embeddings[rows] = torch.randn(len(groups[rows]), dim, generator=generator)
        embeddings[rows].mul_(noise).add_(centres[groups[rows]])
    return embeddings.to(device), groups.to(device)


def measure(run: Callable[[], Any], device: str) -> tuple[float, float | None, Any]:
    """(seconds, peak MB above the memory in use before or None if unknown, result) of
    ``run()``."""
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        try:
            Path("/proc/self/clear_refs").write_text("5")  # restart the peak-RSS counter
            before = _status_kb("VmRSS") * 1024
        except OSError:  # some sandboxes forbid it: no peak then
            before = None
    start = time.perf_counter()
    result = run()
    if device == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated()
    else:
        peak = None if before is None else _status_kb("VmHWM") * 1024
    seconds = time.perf_counter() - start
    return seconds, None if peak is None else (peak - before) / 2**20, result


def megabytes(value: float | None) -> int | None:
    return None if value is None else round(value)


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} missing from /proc/self/status")


def bare_baseline(embeddings: torch.Tensor, depth: int, chunk_size: int, queries=None) -> None:
    """The floor: chunked raw matrix product and top-k, nothing else."""
    queries = embeddings if queries is None else queries
    for start in range(0, len(queries), chunk_size):
        torch.topk(queries[start : start + chunk_size] @ embeddings.T, depth, dim=1)


def depth_of(groups: torch.Tensor, ks: tuple[int, ...]) -> int:
    """List depth the engine ranks: max(k, largest R)."""
    return max(max(ks), int(torch.bincount(groups).max()) - 1)


def rounded(metrics: dict[str, torch.Tensor]) -> dict[str, float]:
    return {name: round(float(value), 6) for name, value in metrics.items()}


def scale(device: str, chunk_size: int | None) -> dict[str, Any]:
    embeddings, groups = clustered(100_000, 384, 1_000, seed=0, device=device, noise=2.5)
    ks = (1, 10, 100)
    chunk = chunk_size or DEFAULT_BLOCK_ELEMENTS // len(embeddings)
    depth = depth_of(groups, ks)
    # burn-in of both code paths on a slice
    retrieval_metrics(embeddings[:3000], groups[:3000], 10)
    bare_baseline(embeddings[:3000], 10, chunk)
    base_s, base_mb, _ = measure(lambda: bare_baseline(embeddings, depth, chunk), device)
    ours_s, ours_mb, metrics = measure(
        lambda: retrieval_metrics(embeddings, groups, ks, chunk_size=chunk), device
    )
    return {
        "vectors": list(embeddings.shape),
        "groups": 1_000,
        "chunk_size": chunk,
        "top_list_depth": depth,
        "embeddings_mb": round(embeddings.numel() * 4 / 2**20),
        "ours_s": round(ours_s, 2),
        "baseline_s": round(base_s, 2),
        "time_ratio": round(ours_s / base_s, 3),
        "ours_peak_mb_above_embeddings": megabytes(ours_mb),
        "baseline_peak_mb_above_embeddings": megabytes(base_mb),
        "metrics": rounded(metrics),
    }


def original_api(device: str) -> dict[str, Any]:
    """The original's way to score a model, on the --scale data, against the bare baseline."""
    embeddings, groups = clustered(100_000, 384, 1_000, seed=0, device=device, noise=2.5)
    model = SimilarityModel(encoders=IdentityEncoder(384), head=EmptyHead(384)).to(device)
    chunk = DEFAULT_BLOCK_ELEMENTS // len(embeddings)

    def metrics() -> dict[str, Any]:
        return {
            "RetrievalRPrecision": RetrievalRPrecision(),
            "RetrievalPrecision@1": RetrievalPrecision(k=1),
            "RetrievalReciprocalRank": RetrievalReciprocalRank(),
        }

    def run(dataset: list, sampler: Any) -> dict[str, torch.Tensor]:
        return Evaluator(metrics(), sampler).evaluate(dataset, model)

    group_data = [
        SimilarityGroupSample(obj=row, group=int(group))
        for row, group in zip(embeddings, groups.tolist(), strict=True)
    ]
    # burn-in of both code paths on a slice
    run(group_data[:3000], GroupSampler(encode_batch_size=1024, log_progress=False))
    bare_baseline(embeddings[:3000], 10, chunk)
    depth = depth_of(groups, (1,))
    base_s, base_mb, _ = measure(lambda: bare_baseline(embeddings, depth, chunk), device)
    sampler = GroupSampler(sample_size=-1, encode_batch_size=1024, log_progress=False)
    ours_s, ours_mb, values = measure(lambda: run(group_data, sampler), device)
    engine = retrieval_metrics(embeddings, groups, 1)
    result: dict[str, Any] = {
        "vectors": list(embeddings.shape),
        "groups": 1_000,
        "chunk_size": chunk,
        "top_list_depth": depth,
        "embeddings_mb": round(embeddings.numel() * 4 / 2**20),
        "baseline_s": round(base_s, 2),
        "baseline_peak_mb_above_embeddings": megabytes(base_mb),
        "group_sampler": {
            "ours_s": round(ours_s, 2),
            "time_ratio": round(ours_s / base_s, 3),
            "ours_peak_mb_above_embeddings": megabytes(ours_mb),
            "metrics": rounded(values),
            "engine_metrics": rounded(
                {name: engine[name] for name in ("r_precision", "precision@1", "mrr")}
            ),
        },
    }
    # 50,000 pairs: obj_a and obj_b are two vectors of one group (rows 2i and 2i + 1)
    order = torch.argsort(groups.cpu(), stable=True)
    pair_data = [
        SimilarityPairSample(obj_a=embeddings[a], obj_b=embeddings[b], score=1.0)
        for a, b in order.view(-1, 2).tolist()
    ]
    sampler = PairSampler(sample_size=-1, encode_batch_size=1024, log_progress=False)
    pairs_s, pairs_mb, values = measure(lambda: run(pair_data, sampler), device)
    result["pair_sampler"] = {
        "pairs": len(pair_data),
        "ours_s": round(pairs_s, 2),
        "time_ratio": round(pairs_s / base_s, 3),
        "ours_peak_mb_above_embeddings": megabytes(pairs_mb),
        "metrics": rounded(values),
    }
    return result


def callback_cost() -> dict[str, Any]:
    """RetrievalMetricsCallback's time per epoch against the rest of the epoch (training steps
    and validation forward passes), on the cache benchmark's workload (imported from
    bench_cache.py, cached fit as measured there)."""
    import bench_cache as workload
    import pytorch_lightning as pl

    from quaterion import Quaterion
    from quaterion.dataset import GroupSimilarityDataLoader
    from quaterion.train.callbacks import RetrievalMetricsCallback

    class TimedCallback(RetrievalMetricsCallback):
        """Its cost per epoch: keeping each batch's embeddings plus ranking the split."""

        def __init__(self):
            super().__init__(k=(1, 10))
            self.clocks: list[workload.Clock] = []
            self._kept = workload.Clock()  # seconds spent keeping this epoch's batches
            self._kept.wall = self._kept.cpu = 0.0

        def on_validation_batch_end(self, *args, **kwargs):
            with workload.Clock() as clock:
                super().on_validation_batch_end(*args, **kwargs)
            self._kept.wall += clock.wall
            self._kept.cpu += clock.cpu

        def on_validation_epoch_end(self, trainer, pl_module):
            with workload.Clock() as clock:
                super().on_validation_epoch_end(trainer, pl_module)
            clock.wall += self._kept.wall
            clock.cpu += self._kept.cpu
            self._kept.wall = self._kept.cpu = 0.0
            self.clocks.append(clock)

    data = workload.make_workload()
    result: dict[str, Any] = {"workload": "bench_cache.py", "epochs": 4}
    splits = {
        "held_out_2000": (data["held_x"], data["held_g"]),
        "train_size_20000": (data["train_x"], data["train_g"]),
    }
    for name, (val_x, val_g) in splits.items():
        pl.seed_everything(0, workers=False)
        _, model_class = workload.user_classes()
        timer, callback = workload.epoch_timer(), TimedCallback()
        val_samples = [
            SimilarityGroupSample(obj=row, group=int(group))
            for row, group in zip(val_x, val_g.tolist(), strict=True)
        ]
        val = GroupSimilarityDataLoader(val_samples, batch_size=1024)
        train = workload.group_loader(data["train_x"], data["train_g"], workload.BATCH)
        trainer = workload.quiet_trainer(4, [timer, callback])
        Quaterion.fit(model_class(cache=True), trainer, train, val)
        # Lightning validates inside the training epoch: its clock holds the training steps,
        # the validation forward passes and the callback; "rest" leaves the callback out
        rest = []
        for whole, spent in zip(timer.epochs, callback.clocks, strict=True):
            clock = workload.Clock()
            clock.wall, clock.cpu = whole.wall - spent.wall, whole.cpu - spent.cpu
            rest.append(clock)
        epoch, cost = workload.steady(rest), workload.steady(callback.clocks)
        result[name] = {
            "validation_samples": len(val_x),
            "epoch_without_callback_wall_s": round(epoch["wall_s"], 3),
            "callback_wall_s": round(cost["wall_s"], 3),
            "callback_over_epoch_wall": round(cost["wall_s"] / epoch["wall_s"], 3),
            "epoch_without_callback_cpu_s": round(epoch["cpu_s"], 3),
            "callback_cpu_s": round(cost["cpu_s"], 3),
            "callback_over_epoch_cpu": round(cost["cpu_s"] / epoch["cpu_s"], 3),
            "r_precision_validation": round(
                float(trainer.callback_metrics["r_precision_validation"]), 6
            ),
        }
    return result


def compare() -> dict[str, Any]:
    from pytorch_metric_learning.distances import CosineSimilarity
    from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
    from pytorch_metric_learning.utils.inference import CustomKNN

    num, num_groups = 20_000, 200
    # equal group sizes: the original's micro-averaged R-precision then equals the mean
    embeddings, groups = clustered(
        num, 384, num_groups, seed=1, device="cpu", noise=2.5, equal_groups=True
    )
    result: dict[str, Any] = {"vectors": [num, 384], "groups": num_groups}
    seconds, peak, ours = measure(lambda: retrieval_metrics(embeddings, groups, 1), "cpu")
    result["ours"] = {"time_s": round(seconds, 2), "peak_mb": megabytes(peak), **rounded(ours)}
    dataset = [
        SimilarityGroupSample(obj=row, group=int(group))
        for row, group in zip(embeddings, groups, strict=True)
    ]
    model = SimilarityModel(encoders=IdentityEncoder(embeddings.shape[1]), head=EmptyHead(384))
    evaluator = Evaluator(
        GroupRetrievalMetrics(k=1), GroupSampler(encode_batch_size=1024, log_progress=False)
    )
    seconds, peak, ours = measure(lambda: evaluator.evaluate(dataset, model), "cpu")
    result["ours_evaluator_group_sampler"] = {
        "time_s": round(seconds, 2),
        "peak_mb": megabytes(peak),
        **rounded(ours),
    }
    calculator = AccuracyCalculator(
        include=("precision_at_1", "r_precision", "mean_average_precision_at_r"),
        k="max_bin_count",
        knn_func=CustomKNN(CosineSimilarity()),
        device=torch.device("cpu"),
    )
    seconds, peak, pml = measure(lambda: calculator.get_accuracy(embeddings, groups), "cpu")
    result["pytorch_metric_learning"] = {
        "time_s": round(seconds, 2),
        "peak_mb": megabytes(peak),
        **{name: round(float(value), 6) for name, value in pml.items()},
    }
    original = run_original(embeddings, groups)
    result["original_quaterion"] = original
    ours_s = result["ours"]["time_s"]
    result["time_ratio_ours_to_pml"] = round(
        ours_s / result["pytorch_metric_learning"]["time_s"], 3
    )
    if "RetrievalRPrecision.compute" in original:
        original_s = original["RetrievalRPrecision.compute"]["time_s"]
        result["time_ratio_ours_to_original"] = round(ours_s / original_s, 3)
    return result


def run_original(embeddings: torch.Tensor, groups: torch.Tensor) -> dict[str, Any]:
    """The original's numbers, from its own venv and process."""
    if not ORIGINAL_PYTHON.exists():
        return {"skipped": "no .venv-original: run bash bench/original_env.sh"}
    with tempfile.TemporaryDirectory() as data_dir:
        for name, array in (("embeddings", embeddings), ("groups", groups)):
            partial = os.path.join(data_dir, f"{name}.partial.npy")
            np.save(partial, array.numpy())
            os.replace(partial, os.path.join(data_dir, f"{name}.npy"))
        environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
        completed = subprocess.run(
            [
                str(ORIGINAL_PYTHON),
                "-P",
                "-W",
                "ignore",
                str(ROOT / "bench" / "original_eval.py"),
                data_dir,
            ],
            cwd=data_dir,
            env=environment,
            capture_output=True,
            text=True,
            check=False,
        )
    if completed.returncode != 0:
        return {"failed": completed.stderr.strip().splitlines()[-1:]}
    return json.loads(completed.stdout.strip().splitlines()[-1])


def million(device: str, queries: int | None, chunk_size: int | None) -> dict[str, Any]:
    embeddings, groups = clustered(1_000_000, 128, 10_000, seed=2, device=device, noise=1.8)
    ks = (1, 10)
    query_indices = None
    if queries is not None and queries < len(embeddings):
        generator = torch.Generator().manual_seed(3)
        query_indices = torch.randperm(len(embeddings), generator=generator)[:queries]
        query_indices = query_indices.to(device)
    chunk = chunk_size or DEFAULT_BLOCK_ELEMENTS // len(embeddings)
    depth = depth_of(groups, ks)
    subset = None if query_indices is None else embeddings[query_indices]
    base_s, base_mb, _ = measure(lambda: bare_baseline(embeddings, depth, chunk, subset), device)
    ours_s, ours_mb, metrics = measure(
        lambda: retrieval_metrics(
            embeddings, groups, ks, query_indices=query_indices, chunk_size=chunk
        ),
        device,
    )
    ranked = len(embeddings) if query_indices is None else len(query_indices)
    return {
        "vectors": list(embeddings.shape),
        "groups": 10_000,
        "queries": ranked,
        "chunk_size": chunk,
        "ours_s": round(ours_s, 2),
        "baseline_s": round(base_s, 2),
        "time_ratio": round(ours_s / base_s, 3),
        "ours_full_s_estimate": round(ours_s * len(embeddings) / ranked, 1),
        "ours_peak_mb_above_embeddings": megabytes(ours_mb),
        "baseline_peak_mb_above_embeddings": megabytes(base_mb),
        "metrics": rounded(metrics),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", action="store_true", help="section (a)")
    parser.add_argument("--compare", action="store_true", help="section (b)")
    parser.add_argument("--million", action="store_true", help="section (c), slow")
    parser.add_argument("--original", action="store_true", help="section (d)")
    parser.add_argument("--callback", action="store_true", help="section (e)")
    parser.add_argument("--queries", type=int, help="(c): rank only this many queries")
    parser.add_argument("--chunk-size", type=int, help="(a), (c): queries per chunk")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = parser.parse_args()
    if not (args.scale or args.compare or args.million or args.original or args.callback):
        parser.error("choose at least one of --scale, --compare, --million, --original, --callback")
    report: dict[str, Any] = {
        "device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu",
        "torch_threads": torch.get_num_threads(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    if args.scale:
        report["scale"] = scale(args.device, args.chunk_size)
    if args.compare:
        report["compare"] = compare()  # the original and PML run on the CPU here
    if args.million:
        report["million"] = million(args.device, args.queries, args.chunk_size)
    if args.original:
        report["original_api"] = original_api(args.device)
    if args.callback:
        report["callback"] = callback_cost()
    report["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(report))


if __name__ == "__main__":
    main()
