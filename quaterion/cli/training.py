"""Training from parts: the TrainableModel behind `quaterion fit` and `quaterion demo`."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytorch_lightning as pl
import torch
from torch.optim import Adam

from quaterion import Quaterion, TrainableModel
from quaterion.dataset import SimilarityDataLoader
from quaterion.train.cache import CacheConfig, CacheType
from quaterion.utils.progress_bar import QuaterionProgressBar
from quaterion_models.encoders import Encoder
from quaterion_models.heads import EncoderHead

LIGHTNING_LOGGERS = ("pytorch_lightning", "lightning.pytorch", "lightning.fabric")


class AssembledModel(TrainableModel):
    """A TrainableModel built from factories instead of a subclass per experiment.

    Args:
        make_encoder: returns the encoder (frozen, or with its top layers trainable).
        make_head: input embedding size -> head.
        make_loss: head output size -> loss.
        lr: Adam learning rate, over the head's and the loss's parameters.
        cache_dir: where cached encoder outputs persist (None: in memory for this run only).
        encoder_lr: Adam learning rate of the encoder's trainable parameters (its top layers
            with `trainable_layers`); None: `lr`.
    """

    def __init__(
        self,
        make_encoder: Callable[[], Encoder],
        make_head: Callable[[int], EncoderHead],
        make_loss: Callable[[int], Any],
        lr: float,
        cache_dir: str | None = None,
        encoder_lr: float | None = None,
    ):
        # plain attributes only before Lightning's __init__: configure_* read them
        self.lr = lr
        self.encoder_lr = lr if encoder_lr is None else encoder_lr
        self._make_encoder = make_encoder
        self._make_head = make_head
        self._make_loss = make_loss
        self._cache_dir = cache_dir
        super().__init__()

    def configure_encoders(self) -> Encoder:
        return self._make_encoder()

    def configure_caches(self) -> CacheConfig:
        return CacheConfig(CacheType.AUTO, save_dir=self._cache_dir, batch_size=128)

    def configure_head(self, input_embedding_size: int) -> EncoderHead:
        return self._make_head(input_embedding_size)

    def configure_loss(self) -> Any:
        return self._make_loss(self.model.head.output_size)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        # a frozen encoder has no trainable parameters: one group, as checkpoints expect it
        encoders = self.model.encoders.values()
        encoder = [p for module in encoders for p in module.parameters() if p.requires_grad]
        in_encoder = {id(p) for p in encoder}
        rest = [
            p
            for p in [*self.model.parameters(), *self.loss.parameters()]
            if id(p) not in in_encoder
        ]
        groups = [{"params": rest}] + (
            [{"params": encoder, "lr": self.encoder_lr}] if encoder else []
        )
        return Adam(groups, lr=self.lr)


@dataclass
class LossHistory(pl.Callback):
    """Mean training and validation loss of every epoch, for the training-curve plot."""

    train: list[float] = field(default_factory=list)
    validation: list[float] = field(default_factory=list)
    _batch_losses: list[float] = field(default_factory=list)

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, *args: Any) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        self._batch_losses.append(float(loss))

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if self._batch_losses:
            self.train.append(sum(self._batch_losses) / len(self._batch_losses))
        self._batch_losses.clear()

    def on_validation_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        value = trainer.callback_metrics.get("validation_loss")
        if value is not None and not trainer.sanity_checking:
            self.validation.append(float(value))


class SingleThreadSteps(pl.Callback):
    """Run the training loop on one CPU thread, and restore the thread count afterwards.

    Steps on cached embeddings are small matrix products: a second intra-op thread gains
    little, and on a CPU shared with other work each op waits for both threads to get a core
    (measured on 2 busy cores: 7 ms per step on one thread, 270 ms on two). The cache is
    filled before training starts, so encoders still run on every thread.
    """

    def __init__(self) -> None:
        self._threads = torch.get_num_threads()

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        self._threads = torch.get_num_threads()
        torch.set_num_threads(1)

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        torch.set_num_threads(self._threads)

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        torch.set_num_threads(self._threads)


class ReseedEachEpoch(pl.Callback):
    """Seed the shuffling `generator` with `seed + epoch` when each epoch starts.

    Each epoch's order then depends on the seed and the epoch alone, so a fit resumed from a
    checkpoint at epoch E shuffles epochs E, E+1, ... as the uninterrupted fit did. Give the
    generator to the loader's `RandomSampler` only, not to the loader: a loader draws a worker
    seed from its own generator when an epoch's iterator is made, which Lightning does before
    this hook on the first epoch of a run and after it on later ones; the sampler draws the
    order when the first batch is taken, after this hook.
    """

    def __init__(self, generator: torch.Generator, seed: int):
        self.generator, self.seed = generator, seed

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self.generator.manual_seed(self.seed + trainer.current_epoch)


def fit(
    model: AssembledModel,
    train_loader: SimilarityDataLoader,
    val_loader: SimilarityDataLoader | None,
    epochs: int,
    seed: int,
    callbacks: Sequence[pl.Callback] = (),
    ckpt_path: str | os.PathLike | None = None,
) -> LossHistory:
    """Train `model` for exactly `epochs` epochs on the CPU (deterministic for a seed).

    Give a shuffling `train_loader` its own seeded `generator`: filling the cache draws from
    torch's global RNG, so a run that fills the cache and one that reuses it would otherwise
    shuffle differently. `callbacks` join the trainer's; `ckpt_path` resumes a checkpoint.
    """
    with _quiet_lightning():
        pl.seed_everything(seed, workers=True, verbose=False)
        history = LossHistory()
        trainer = pl.Trainer(
            accelerator="cpu",
            devices=1,
            max_epochs=epochs,
            logger=False,
            enable_checkpointing=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            log_every_n_steps=1,
            deterministic=True,
            callbacks=[QuaterionProgressBar(), history, SingleThreadSteps(), *callbacks],
        )
        resume = None if ckpt_path is None else str(ckpt_path)
        Quaterion.fit(model, trainer, train_loader, val_loader, ckpt_path=resume)
    return history


@contextmanager
def _quiet_lightning() -> Iterator[None]:
    """Hide Lightning's start-up notices (accelerator lines, tips) and its warning about the
    frozen encoder staying in eval mode, which is intended here."""
    loggers = [logging.getLogger(name) for name in LIGHTNING_LOGGERS]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")
        for logger in loggers:
            logger.setLevel(logging.WARNING)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)
