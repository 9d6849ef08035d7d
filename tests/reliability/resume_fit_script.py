"""A seeded, cached fit with a checkpoint every epoch, run as its own process by
test_reliability_resume.py.

    python resume_fit_script.py WORKDIR [--hold-at EPOCH | --stop-at EPOCH] [--resume CKPT]

Checkpoints go to WORKDIR/ckpt (`epoch=N.ckpt` and `last.ckpt`). At the end the script writes
WORKDIR/result.json: the held-out triplet loss, precision@1 and the head weights, so two runs can
be compared. `--hold-at E` stops in the middle of epoch E (before its second batch), writes
WORKDIR/holding and waits there to be killed; `--resume` continues from a checkpoint with
`Quaterion.fit(..., ckpt_path=...)`. `--stop-at E` adds `StopOnSignal` (checkpoint
WORKDIR/stopped.ckpt, servable WORKDIR/servable) and holds at the same place until a SIGINT or
SIGTERM arrives; the process then exits with FitInterrupted's code.
The data order is fixed (no shuffling) and the model has no dropout, so a resumed run must end
where an uninterrupted one does.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import pytorch_lightning as pl
import torch
from reliability_support import (
    HoldUntilSignal,
    SimpleModel,
    group_loader,
    group_samples,
    quiet_trainer,
)

from quaterion import Quaterion
from quaterion.loss import TripletLoss
from quaterion.train.cache import CacheConfig, CacheType
from quaterion.train.callbacks import StopOnSignal
from quaterion_models.heads import SkipConnectionHead
from quaterion_models.utils.files import write_json_atomic

EPOCHS = 6
SEED = 7


class Hold(pl.Callback):
    """Waits forever before batch 1 of epoch `epoch` (after batch 0 trained), announcing it by
    creating `signal_file`: the run is in the middle of an epoch when it gets killed."""

    def __init__(self, epoch: int | None, signal_file: Path):
        self.epoch, self.signal_file = epoch, signal_file

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: object, batch_idx: int
    ) -> None:
        if trainer.current_epoch == self.epoch and batch_idx == 1:
            self.signal_file.touch()
            while True:
                time.sleep(1)


def build_model() -> SimpleModel:
    return SimpleModel(
        loss=lambda: TripletLoss(mining="all"),
        head=lambda size: SkipConnectionHead(size, n_layers=2),
        cache=CacheConfig(CacheType.CPU),
        lr=0.02,
    )


def held_out_scores(model: SimpleModel) -> dict[str, float]:
    """Triplet loss and precision@1 (cosine, self excluded) of held-out data."""
    samples = group_samples(n=96, seed=SEED + 1)
    embeddings = model.model.encode([s.obj for s in samples], to_numpy=False)
    groups = torch.tensor([s.group for s in samples])
    loss = TripletLoss(mining="all")(embeddings, groups)
    unit = torch.nn.functional.normalize(embeddings, dim=1)
    similarity = unit @ unit.T
    similarity.fill_diagonal_(-2.0)
    precision = (groups[similarity.argmax(dim=1)] == groups).float().mean()
    return {"loss": float(loss), "precision_at_1": float(precision)}


def run(
    workdir: Path,
    hold_at: int | None = None,
    resume: str | None = None,
    stop_at: int | None = None,
) -> dict:
    """Fit (or resume) in this process; write and return the result."""
    pl.seed_everything(SEED, verbose=False)
    model = build_model()
    checkpoints = pl.callbacks.ModelCheckpoint(
        dirpath=str(workdir / "ckpt"),
        filename="{epoch}",
        every_n_epochs=1,
        save_top_k=-1,
        save_last=True,
    )
    callbacks = [checkpoints, Hold(hold_at, workdir / "holding")]
    if stop_at is not None:
        stop = StopOnSignal(workdir / "stopped.ckpt", workdir / "servable")
        callbacks += [HoldUntilSignal(stop_at, workdir / "holding", stop), stop]
    trainer = quiet_trainer(
        str(workdir), max_epochs=EPOCHS, enable_checkpointing=True, callbacks=callbacks
    )
    train = group_loader(group_samples(n=128, seed=SEED), batch_size=32, shuffle=False)
    Quaterion.fit(model, trainer, train, ckpt_path=resume)
    head = {name: value.tolist() for name, value in model.model.head.state_dict().items()}
    result = {
        **held_out_scores(model),
        "epochs": trainer.current_epoch,
        "steps": model.steps,  # training steps this process ran
        "head": head,
    }
    write_json_atomic(workdir / "result.json", result)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("workdir")
    parser.add_argument("--hold-at", type=int, default=None)
    parser.add_argument("--resume", default=None)
    parser.add_argument("--stop-at", type=int, default=None)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)  # tiny workload; spinning OpenMP threads only slow a shared machine
    run(Path(args.workdir), args.hold_at, args.resume, args.stop_at)


if __name__ == "__main__":
    main()
