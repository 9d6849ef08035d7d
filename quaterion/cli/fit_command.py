"""`quaterion fit CONFIG`: train a head from a config file and save the servable model."""

from __future__ import annotations

import argparse
import time

from quaterion.cli.components import ENCODERS, GROUP_LOSSES, HEADS, PAIR_LOSSES
from quaterion.cli.config import DATA_KINDS


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


def run_fit(args: argparse.Namespace) -> int:
    """Load and check the config, train, save the servable; prints where it went."""
    import torch

    from quaterion.cli.components import (
        build_encoder,
        build_head,
        build_loss,
        load_config,
        loss_kind,
    )
    from quaterion.cli.data_sources import load_task
    from quaterion.cli.training import AssembledModel, fit
    from quaterion.dataset import GroupSimilarityDataLoader, PairsSimilarityDataLoader

    started = time.perf_counter()
    config = load_config(args.config)
    task = load_task(config.data, loss_kind(config.loss.name))
    print(
        f"Data: {config.data.kind}, {len(task.train)} train / {len(task.held_out)} held-out "
        f"{task.kind}"
    )
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
    generator = torch.Generator().manual_seed(config.seed)  # same shuffles with a reused cache
    train_loader = loader_type(
        train, batch_size=config.batch_size, shuffle=True, generator=generator
    )
    val_loader = loader_type(held_out, batch_size=config.batch_size)
    history = fit(model, train_loader, val_loader, config.epochs, config.seed)
    output = args.output or config.output_dir
    model.save_servable(output)
    losses = ", ".join(
        f"{name} {values[-1]:.4f}"
        for name, values in (("train loss", history.train), ("validation loss", history.validation))
        if values
    )
    print(f"Trained {config.epochs} epochs ({losses}) in {time.perf_counter() - started:.1f}s")
    print(f"Servable saved to {output}")
    return 0
