"""Stop a fit cleanly on SIGINT / SIGTERM: finish the step, keep what the finished epochs earned.

Lightning on its own raises ``KeyboardInterrupt`` in the middle of a step on SIGINT and exits
with code 1, and on SIGTERM stops after the step with ``SIGTERMException`` (a ``SystemExit``
without a code, so the process exits 0) and saves nothing. ``StopOnSignal`` replaces both,
while training runs, by a handler that only records the signal; at the next step boundary it
writes a resumable checkpoint of the last finished epoch (and optionally that epoch's
servable) and raises ``FitInterrupted``, a ``SystemExit`` whose code is 128 + the signal
number (130, 143), as shells report a process stopped by that signal.

Why the last *finished* epoch: Lightning resumes a mid-epoch checkpoint of a loader without
``state_dict`` by starting the epoch's batches again ("This can cause unreliable results"),
so only an epoch boundary resumes exactly. The state at the end of each epoch is kept in
memory (a copy of the checkpoint dict; frozen parameters are shared, not copied).
"""

from __future__ import annotations

import copy
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.utilities.exceptions import SIGTERMException

PathLike = str | os.PathLike

#: signals StopOnSignal handles by default
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class FitInterrupted(SystemExit):
    """A fit stopped by a signal. ``code`` (the exit status) is 128 + the signal number.

    Attributes:
        signal_number: the signal that stopped the fit.
        checkpoint: the resumable checkpoint written (``Quaterion.fit(..., ckpt_path=...)``),
            or None when nothing was saved.
        servable: the servable of the last finished epoch, or None.
        epochs_finished: epochs completed in the saved state (0: none).

    Args:
        signal_number: the signal that stopped the fit.
        checkpoint: the checkpoint saved to resume from, if any.
        servable: the servable saved, if any.
        epochs_finished: complete epochs before the stop.
    """

    def __init__(
        self,
        signal_number: int,
        checkpoint: Path | None = None,
        servable: Path | None = None,
        epochs_finished: int = 0,
    ):
        super().__init__(128 + signal_number)
        self.signal_number = signal_number
        self.checkpoint = checkpoint
        self.servable = servable
        self.epochs_finished = epochs_finished

    def __str__(self) -> str:
        name = signal.Signals(self.signal_number).name
        if self.checkpoint is None:
            return (
                f"fit stopped by {name}; nothing was saved (add "
                "quaterion.train.callbacks.StopOnSignal to the trainer's callbacks to keep a "
                "resumable checkpoint)"
            )
        servable = (
            f"; servable of that epoch: {self.servable}"
            if self.servable is not None
            else "; no epoch had finished, so no servable was saved"
        )
        return (
            f"fit stopped by {name} after {self.epochs_finished} finished epoch(s); "
            f"checkpoint: {self.checkpoint}{servable}; resume with "
            f"Quaterion.fit(..., ckpt_path={str(self.checkpoint)!r})"
        )

    @classmethod
    def from_exit(cls, exc: SystemExit, trainer: pl.Trainer) -> FitInterrupted | None:
        """The interruption a ``SystemExit`` out of ``trainer.fit`` stands for, if any.

        Lightning raises ``SIGTERMException`` after a SIGTERM, and ``sys.exit(1)`` after a
        ``KeyboardInterrupt``; both become a ``FitInterrupted`` (with what a ``StopOnSignal``
        of the trainer saved). Any other ``SystemExit`` gives None.

        Args:
            exc: the `SystemExit` raised out of `trainer.fit`.
            trainer: the trainer (its callbacks say whether a signal stopped it).
        """
        if isinstance(exc, FitInterrupted):
            return exc
        if isinstance(exc, SIGTERMException):
            signal_number = signal.SIGTERM
        elif isinstance(exc.__context__, KeyboardInterrupt):
            signal_number = signal.SIGINT
        else:
            return None
        for callback in trainer.callbacks:
            if isinstance(callback, StopOnSignal) and callback.interruption is not None:
                return callback.interruption
        return cls(signal_number)


class StopOnSignal(Callback):
    """On SIGINT or SIGTERM during training: finish the current step, save, stop.

    Saves ``checkpoint_path`` (the state at the end of the last finished epoch, or at the start
    of training when none finished; resume with ``Quaterion.fit(..., ckpt_path=...)``) and,
    when ``servable_path`` is given and an epoch finished, that epoch's servable
    (``save_servable``). Then raises ``FitInterrupted`` (exit code 130 for SIGINT, 143 for
    SIGTERM) and prints where both went unless ``verbose`` is False. A second signal while
    stopping gets the handler that was there before (Ctrl+C twice: ``KeyboardInterrupt``).

    The handlers are installed when training starts and the previous ones restored when it
    ends, fails or stops. Only in the main thread of a single-process run: under DDP
    Lightning's own SIGTERM handling (which stops every process) stays in charge.

    Args:
        checkpoint_path: where the resumable checkpoint is written.
        servable_path: where the servable is written too, or None.
        signals: the signals handled.
        verbose: print what was saved and how to resume.
    """

    def __init__(
        self,
        checkpoint_path: PathLike,
        servable_path: PathLike | None = None,
        signals: tuple[int, ...] = STOP_SIGNALS,
        verbose: bool = True,
    ):
        self.checkpoint_path = Path(checkpoint_path)
        self.servable_path = None if servable_path is None else Path(servable_path)
        self.signals = tuple(signals)
        self.verbose = verbose
        self.requested: int | None = None  # the signal received, until the fit stops
        self.interruption: FitInterrupted | None = None  # what the last stop saved
        self._previous: dict[int, Any] = {}
        self._snapshot: dict[str, Any] | None = None
        self._epochs_finished = 0

    # ---- signal handlers ----

    def _on_signal(self, signal_number: int, frame: FrameType | None) -> None:
        self.requested = signal_number
        self._restore_handlers()  # a second signal acts as it would have without us

    def _install_handlers(self, trainer: pl.Trainer) -> None:
        if trainer.world_size > 1 or threading.current_thread() is not threading.main_thread():
            return
        for signal_number in self.signals:
            self._previous[signal_number] = signal.signal(signal_number, self._on_signal)

    def _restore_handlers(self) -> None:
        for signal_number, handler in self._previous.items():
            signal.signal(signal_number, handler)
        self._previous.clear()

    # ---- the state of the last finished epoch ----

    def _remember(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Keep a copy of the checkpoint Lightning would write now (frozen parameters are
        shared: nothing changes them)."""
        frozen = {p.data_ptr() for p in pl_module.parameters() if not p.requires_grad}
        checkpoint = trainer._checkpoint_connector.dump_checkpoint(weights_only=False)
        tensors = checkpoint["state_dict"].values()
        shared = {id(tensor): tensor for tensor in tensors if tensor.data_ptr() in frozen}
        self._snapshot = copy.deepcopy(checkpoint, memo=shared)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.requested = None
        self.interruption = None
        self._epochs_finished = trainer.current_epoch
        self._remember(trainer, pl_module)
        self._install_handlers(trainer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._epochs_finished = trainer.current_epoch + 1
        self._remember(trainer, pl_module)
        self._stop_if_requested()

    def on_train_batch_start(self, *args: Any) -> None:
        self._stop_if_requested()

    def on_train_batch_end(self, *args: Any) -> None:
        self._stop_if_requested()

    def on_validation_batch_end(self, *args: Any) -> None:
        self._stop_if_requested()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._restore_handlers()
        self._snapshot = None

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._restore_handlers()
        self._snapshot = None

    def _stop_if_requested(self) -> None:
        if self.requested is not None:
            raise FitInterrupted(self.requested)

    # ---- stopping ----

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        self._restore_handlers()
        signal_number = self.requested
        if signal_number is None and isinstance(exception, SIGTERMException):
            signal_number = signal.SIGTERM  # Lightning stopped first (a SIGTERM before ours)
        if signal_number is None or self._snapshot is None:
            return
        self.interruption = self._save(trainer, pl_module, signal_number)
        if self.verbose:
            print(str(self.interruption), file=sys.stderr, flush=True)
        if isinstance(exception, FitInterrupted):  # the exception Lightning re-raises
            exception.checkpoint = self.interruption.checkpoint
            exception.servable = self.interruption.servable
            exception.epochs_finished = self.interruption.epochs_finished

    def _save(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, signal_number: int
    ) -> FitInterrupted:
        """Write the remembered checkpoint (through a temporary file) and its servable."""
        snapshot, self._snapshot = self._snapshot, None
        target = self.checkpoint_path
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        try:
            trainer.strategy.save_checkpoint(snapshot, staging)
            os.replace(staging, target)
        finally:
            staging.unlink(missing_ok=True)
        servable = None
        if self.servable_path is not None and self._epochs_finished > 0:
            pl_module.load_state_dict(snapshot["state_dict"])
            pl_module.save_servable(str(self.servable_path))
            servable = self.servable_path
        return FitInterrupted(signal_number, target, servable, self._epochs_finished)
