"""`quaterion fit CONFIG`: train a head from a config file and save the servable model."""

from __future__ import annotations

import argparse
import shlex
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING

from quaterion.cli.components import ENCODERS, GROUP_LOSSES, HEADS, PAIR_LOSSES
from quaterion.cli.config import DATA_KINDS

if TYPE_CHECKING:
    from quaterion.train.callbacks import FitInterrupted


def add_fit_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `quaterion fit`."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (
        "config sections (YAML or TOML): data {kind, path, categories, limit, val_fraction, "
        "seed}, encoder {name, path, image_size}, head {name, kwargs}, loss {name, kwargs}; "
        "top-level: epochs, batch_size, lr, seed, cache_dir, output_dir.\n\ndata kinds:\n"
        + "\n".join(f"  {name:<20} {text}" for name, text in DATA_KINDS.items())
        + "\nencoders:\n"
        + "\n".join(f"  {name:<20} {choice.help}" for name, choice in ENCODERS.items())
        + f"\nheads:\n  {', '.join(HEADS)}"
        + f"\nlosses for groups:\n  {', '.join(GROUP_LOSSES)}"
        + f"\nlosses for pairs:\n  {', '.join(PAIR_LOSSES)}"
    )
    parser.add_argument("config", help="YAML (.yaml/.yml), TOML (.toml) or JSON config file")
    parser.add_argument("--output", default=None, help="servable directory (overrides output_dir)")
    parser.add_argument(
        "--resume",
        nargs="?",
        const=RESUME_DEFAULT,
        default=None,
        metavar="CHECKPOINT",
        help="continue a fit stopped by Ctrl+C / SIGTERM from its checkpoint (default: the "
        "SERVABLE.ckpt file that run wrote next to the servable directory)",
    )
    parser.epilog += (
        "\n\nCtrl+C or SIGTERM during training stops after the current step, saves a "
        "checkpoint of the last finished epoch (SERVABLE.ckpt) and that epoch's servable, and "
        "exits 130 / 143; `--resume` continues from it. Every output place (servable, "
        "cache_dir, checkpoint) is checked before anything is loaded."
    )


#: `--resume` without a value: the checkpoint next to the servable directory
RESUME_DEFAULT = "<SERVABLE.ckpt>"


def checkpoint_path(output: str) -> Path:
    """Where an interrupted fit into servable directory `output` keeps its checkpoint."""
    servable = Path(output).absolute()
    return servable.with_name(servable.name + ".ckpt")


def check_outputs(output: str, cache_dir: str | None, resume: str | None) -> Path | None:
    """Raise before any work when a place the fit writes is unusable; return the checkpoint to
    resume from (None: start anew)."""
    from quaterion.utils.output_paths import check_output_dir, check_output_file
    from quaterion_models.model import CONFIG_FILE

    check_output_dir(
        output,
        "servable directory",
        replaceable=lambda path: (path / CONFIG_FILE).is_file(),  # a previous servable
        replaced_whole=True,
    )
    if cache_dir is not None:
        check_output_dir(cache_dir, "cache directory (cache_dir)")
    check_output_file(checkpoint_path(output), "checkpoint file")
    if resume is None:
        return None
    checkpoint = checkpoint_path(output) if resume == RESUME_DEFAULT else Path(resume)
    if not checkpoint.is_file():
        raise FileNotFoundError(
            f"no checkpoint to resume from at {checkpoint}: one is written when a fit is "
            "stopped by Ctrl+C or SIGTERM; run without --resume to start anew"
        )
    return checkpoint


def run_fit(args: argparse.Namespace) -> int:
    """Load and check the config and the output places, train (or resume), save the
    servable; prints where it went. A stop by signal returns 130 / 143 after saving."""
    import torch
    from torch.utils.data import RandomSampler

    from quaterion.cli.components import (
        build_encoder,
        build_head,
        build_loss,
        load_config,
        loss_kind,
    )
    from quaterion.cli.data_sources import load_task
    from quaterion.cli.training import AssembledModel, ReseedEachEpoch, fit
    from quaterion.dataset import GroupSimilarityDataLoader, PairsSimilarityDataLoader
    from quaterion.train.callbacks import FitInterrupted, StopOnSignal

    started = time.perf_counter()
    config = load_config(args.config)
    output = args.output or config.output_dir
    resume = check_outputs(output, config.cache_dir, args.resume)
    task = load_task(config.data, loss_kind(config.loss.name))
    print(
        f"Data: {config.data.kind}, {len(task.train)} train / {len(task.held_out)} held-out "
        f"{task.kind}"
    )
    torch.manual_seed(config.seed)  # before the head is built: same seed, same initial weights
    model = AssembledModel(
        make_encoder=lambda: build_encoder(config.encoder),
        make_head=lambda size: build_head(config.head, size),
        make_loss=lambda size: build_loss(config.loss, size, task.num_groups),
        lr=config.lr,
        cache_dir=config.cache_dir,
    )
    loader_type = GroupSimilarityDataLoader if task.kind == "groups" else PairsSimilarityDataLoader
    train, held_out = task.train, task.held_out
    if task.labels is not None:  # losses take integer ids: sorted labels -> 0..G-1
        print(f"Groups: {task.labels.summary()}")
        train, held_out = task.labels.to_ids(train), task.labels.to_ids(held_out)
    # the shuffle's own generator, seeded per epoch (ReseedEachEpoch): the same order with a
    # reused cache and after a resume; the loader has none, so nothing else draws from it
    generator = torch.Generator()
    train_loader = loader_type(
        train, batch_size=config.batch_size, sampler=RandomSampler(train, generator=generator)
    )
    val_loader = loader_type(held_out, batch_size=config.batch_size)
    checkpoint = checkpoint_path(output)
    if resume is None and checkpoint.is_file():
        print(f"Starting anew; `--resume` would continue the interrupted run kept in {checkpoint}")
    stop = StopOnSignal(checkpoint, servable_path=output, verbose=False)
    print(
        f"{'Resuming from ' + str(resume) if resume else 'Training'}; Ctrl+C or SIGTERM during "
        "training stops after the current step and saves a checkpoint to resume from"
    )
    try:
        history = fit(
            model,
            train_loader,
            val_loader,
            config.epochs,
            config.seed,
            callbacks=[stop, ReseedEachEpoch(generator, config.seed)],
            ckpt_path=resume,
        )
    except FitInterrupted as exc:
        _report_interruption(exc, args, config.epochs)
        return exc.code
    model.save_servable(output)
    losses = ", ".join(
        f"{name} {values[-1]:.4f}"
        for name, values in (("train loss", history.train), ("validation loss", history.validation))
        if values
    )
    print(f"Trained {config.epochs} epochs ({losses}) in {time.perf_counter() - started:.1f}s")
    print(f"Servable saved to {output}")
    if checkpoint.is_file():  # the finished servable supersedes the interrupted run's state
        checkpoint.unlink()
        print(f"Removed the checkpoint of the interrupted run, {checkpoint}")
    return 0


def _report_interruption(exc: FitInterrupted, args: argparse.Namespace, epochs: int) -> None:
    """Say what an interrupted fit kept and the command that continues it."""
    name = signal.Signals(exc.signal_number).name
    print(f"Stopped by {name} after the current step; {exc.epochs_finished} of {epochs} epochs")
    if exc.checkpoint is None:
        print("Nothing was saved: training had not started")
        return
    print(f"Checkpoint (the last finished epoch): {exc.checkpoint}")
    if exc.servable is not None:
        print(f"Servable of epoch {exc.epochs_finished}: {exc.servable}")
    command = ["quaterion", "fit", args.config]
    if args.output:
        command += ["--output", args.output]
    print(f"Resume with: {shlex.join([*command, '--resume'])}")
