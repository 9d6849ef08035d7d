"""StopOnSignal and FitInterrupted in this process: the signal is sent by a callback at a known
step (the handler runs at once, in the main thread), so every path is deterministic.

The same behaviour in a separate process, with exit codes and resuming, is tested in
tests/reliability/test_reliability_signals.py.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from quaterion import Quaterion
from quaterion.loss import TripletLoss
from quaterion.train.callbacks import FitInterrupted, StopOnSignal

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


class SendSignal(pl.Callback):
    """Sends `signal_number` to this process before batch `batch` of epoch `epoch`."""

    def __init__(self, signal_number: int, epoch: int, batch: int):
        self.signal_number, self.epoch, self.batch = signal_number, epoch, batch
        self.sent = 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if (trainer.current_epoch, batch_idx) == (self.epoch, self.batch):
            self.sent += 1
            os.kill(os.getpid(), self.signal_number)


class CountSteps(pl.Callback):
    def __init__(self):
        self.steps = 0

    def on_train_batch_end(self, *args):
        self.steps += 1


@pytest.fixture
def fit(head_model, clusters, to_group_samples, fast_trainer):
    """fit(*callbacks, epochs=3) -> model, with `fit.steps` the steps run; 4 batches an epoch."""
    from quaterion.dataset import GroupSimilarityDataLoader

    def run(*callbacks, epochs=3, checkpointing=False):
        torch.manual_seed(0)
        model = head_model(16, TripletLoss)
        counter = CountSteps()
        trainer = fast_trainer(
            max_epochs=epochs,
            callbacks=[*callbacks, counter],
            enable_checkpointing=checkpointing,
        )
        loader = GroupSimilarityDataLoader(to_group_samples(*clusters(per_class=8)), batch_size=8)
        try:
            Quaterion.fit(model, trainer, loader)
        finally:
            run.steps = counter.steps
        return model

    return run


def _handlers():
    return signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM], ids=["INT", "TERM"])
def test_a_signal_stops_after_the_step_and_saves_the_last_finished_epoch(
    fit, tmp_path: Path, signal_number: int
):
    before = _handlers()
    stop = StopOnSignal(tmp_path / "run.ckpt", tmp_path / "servable", verbose=False)
    with pytest.raises(FitInterrupted) as raised:
        fit(SendSignal(signal_number, epoch=1, batch=2), stop)
    interrupted = raised.value
    assert interrupted.code == 128 + signal_number  # 130 / 143
    assert (interrupted.checkpoint, interrupted.servable) == (
        tmp_path / "run.ckpt",
        tmp_path / "servable",
    )
    assert interrupted.epochs_finished == 1
    assert fit.steps == 4 + 2  # epoch 0, then batches 0 and 1 of epoch 1: none after the signal
    assert _handlers() == before, "the handlers from before the fit are back"
    saved = torch.load(tmp_path / "run.ckpt", weights_only=False)
    assert (saved["epoch"], saved["global_step"]) == (0, 4)
    assert str(tmp_path / "run.ckpt") in str(interrupted) and "ckpt_path" in str(interrupted)


def test_the_servable_holds_the_head_of_the_last_finished_epoch(fit, tmp_path: Path):
    from pytorch_lightning.callbacks import ModelCheckpoint

    from quaterion_models import SimilarityModel

    stop = StopOnSignal(tmp_path / "run.ckpt", tmp_path / "servable", verbose=False)
    every_epoch = ModelCheckpoint(dirpath=tmp_path / "epochs", filename="{epoch}", save_top_k=-1)
    with pytest.raises(FitInterrupted):
        fit(SendSignal(signal.SIGTERM, epoch=2, batch=1), stop, every_epoch, checkpointing=True)
    reference = torch.load(tmp_path / "epochs" / "epoch=1.ckpt", weights_only=False)
    head = SimilarityModel.load(tmp_path / "servable").head.state_dict()
    for key, value in head.items():
        assert torch.equal(value, reference["state_dict"][f"_model.head.{key}"]), key


def test_a_signal_before_any_epoch_finished_saves_the_start_but_no_servable(fit, tmp_path):
    stop = StopOnSignal(tmp_path / "run.ckpt", tmp_path / "servable", verbose=False)
    with pytest.raises(FitInterrupted) as raised:
        fit(SendSignal(signal.SIGINT, epoch=0, batch=1), stop)
    assert raised.value.epochs_finished == 0 and raised.value.servable is None
    assert (tmp_path / "run.ckpt").is_file() and not (tmp_path / "servable").exists()
    assert "no epoch had finished" in str(raised.value)


def test_a_second_signal_gets_the_previous_handler(fit, tmp_path):
    """Ctrl+C twice: the second one is a KeyboardInterrupt, as without StopOnSignal."""

    class SignalTwice(SendSignal):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            super().on_train_batch_start(trainer, pl_module, batch, batch_idx)
            if self.sent == 1:
                os.kill(os.getpid(), self.signal_number)

    before = _handlers()
    stop = StopOnSignal(tmp_path / "run.ckpt", verbose=False)
    with pytest.raises(FitInterrupted) as raised:
        fit(SignalTwice(signal.SIGINT, epoch=1, batch=0), stop)
    assert raised.value.code == 130 and (tmp_path / "run.ckpt").is_file()
    assert _handlers() == before


def test_without_stop_on_signal_sigterm_is_an_exit_143_that_saved_nothing(fit, tmp_path):
    """Lightning alone stops after the step with a SystemExit of code None (exit status 0)."""
    before = _handlers()
    with pytest.raises(FitInterrupted) as raised:
        fit(SendSignal(signal.SIGTERM, epoch=0, batch=1))
    assert raised.value.code == 143 and raised.value.checkpoint is None
    assert "nothing was saved" in str(raised.value) and "StopOnSignal" in str(raised.value)
    assert fit.steps == 2
    assert _handlers() == before


def test_a_fit_that_ends_normally_restores_the_handlers_and_saves_nothing(fit, tmp_path):
    before = _handlers()
    fit(StopOnSignal(tmp_path / "run.ckpt", tmp_path / "servable"), epochs=2)
    assert _handlers() == before
    assert list(tmp_path.iterdir()) == []
