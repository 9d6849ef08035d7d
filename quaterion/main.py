"""Quaterion: the entry point that fits a TrainableModel and evaluates a SimilarityModel."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import EarlyStopping, RichModelSummary
from torch import Tensor

from quaterion.dataset.similarity_data_loader import (
    GroupSimilarityDataLoader,
    PairsSimilarityDataLoader,
    SimilarityDataLoader,
)
from quaterion.loss import GroupLoss, PairwiseLoss
from quaterion.train.cache import CacheType
from quaterion.train.callbacks import CleanupCallback, FitInterrupted, MetricsCallback
from quaterion.train.trainable_model import TrainableModel
from quaterion.utils.distributed import destroy_process_group_at_exit
from quaterion.utils.progress_bar import QuaterionProgressBar
from quaterion_models import SimilarityModel

if TYPE_CHECKING:
    from quaterion.eval.evaluator import Evaluator

#: ``max_epochs`` of the default trainer when there is no validation loader: nothing can stop
#: training early then, so the run is bounded instead of endless.
EPOCHS_WITHOUT_VALIDATION = 10

# loader kind -> (loss kind it needs, example losses, the loader to use with the other kind)
_LOSS_KIND_OF_LOADER = (
    (
        PairsSimilarityDataLoader,
        PairwiseLoss,
        "ContrastiveLoss or MultipleNegativesRankingLoss",
        "GroupSimilarityDataLoader",
    ),
    (GroupSimilarityDataLoader, GroupLoss, "TripletLoss", "PairsSimilarityDataLoader"),
)

# Lightning warnings about choices the framework made, not the user
_NO_VALIDATION_WARNING = r"You defined a `validation_step` but have no `val_dataloader`"
_FEW_WORKERS_WARNING = r"The '\w+' does not have many workers"
_DEFAULT_LOGGER_WARNING = r"Starting from v1.9.0, `tensorboardX` has been removed"
_FROZEN_EVAL_WARNING = r"Found \d+ module\(s\) in eval mode at the start of training"
# Lightning 2.6 calling a torch API that torch deprecated: noise unrelated to the user's code
_LIGHTNING_PYTREE_WARNING = r"`isinstance\(treespec, LeafSpec\)` is deprecated"


@contextmanager
def _silence(*messages: str) -> Iterator[None]:
    """Hide warnings whose text starts with one of ``messages`` (regular expressions)."""
    with warnings.catch_warnings():
        for message in messages:
            warnings.filterwarnings("ignore", message=message)
        yield


class _CachedData(pl.LightningDataModule):
    """The loaders of a distributed fit: the cache is set up in `setup`, which every process
    runs once the process group exists, so the processes split the fill between them.

    Args:
        model: the model being fitted.
        train: the training loader.
        val: the validation loader, or None.
    """

    def __init__(self, model: TrainableModel, train: SimilarityDataLoader, val: Any):
        super().__init__()
        self.model, self.loaders = model, (train, val)

    def setup(self, stage: str) -> None:
        """Fill the cache (Lightning calls this in every process after it started them).

        Args:
            stage: Lightning's stage name.
        """
        self.loaders = self.model.setup_cache(self.trainer, *self.loaders)

    def train_dataloader(self) -> Any:
        """The training loader (after `setup`, the cache's)."""
        return self.loaders[0]

    def val_dataloader(self) -> Any:
        """The validation loader, or none."""
        return self.loaders[1] if self.loaders[1] is not None else []


class Quaterion:
    """Fit a ``TrainableModel`` with Lightning, and evaluate a ``SimilarityModel``."""

    @classmethod
    def fit(
        cls,
        trainable_model: TrainableModel,
        trainer: pl.Trainer | None,
        train_dataloader: SimilarityDataLoader,
        val_dataloader: SimilarityDataLoader | None = None,
        ckpt_path: str | None = None,
    ) -> None:
        """Train ``trainable_model`` on ``train_dataloader``.

        Checks that loss and loader kinds agree, builds a trainer from ``trainer_defaults`` when
        ``trainer`` is None (without ``val_dataloader``: no early stopping and
        ``max_epochs=EPOCHS_WITHOUT_VALIDATION``), sets up the loaders and the cache, then runs
        ``trainer.fit``. The cache trains from its own loaders; the given ones are left collating
        for the plain model, and the encoders are unwrapped from their caches afterwards.

        A SIGINT or SIGTERM during training raises ``FitInterrupted`` (a ``SystemExit`` with
        code 130 or 143); with a ``StopOnSignal`` callback in the trainer it first saves a
        checkpoint to resume from (``ckpt_path``) and the servable of the last finished epoch.

        Args:
            trainable_model: the model to train.
            trainer: a Lightning trainer, or None for one built from `trainer_defaults`.
            train_dataloader: a `PairsSimilarityDataLoader` or `GroupSimilarityDataLoader` matching
                the loss.
            val_dataloader: a loader of the same kind for validation, or None.
            ckpt_path: a Lightning checkpoint to resume from, or None.
        """
        cls.validate_fit(trainable_model, train_dataloader, val_dataloader)
        if trainer is None:
            with _silence(_DEFAULT_LOGGER_WARNING):
                trainer = pl.Trainer(
                    **cls._fit_defaults(trainable_model, train_dataloader, val_dataloader)
                )
        for callback_type in (CleanupCallback, MetricsCallback):
            if not any(isinstance(callback, callback_type) for callback in trainer.callbacks):
                trainer.callbacks.append(callback_type())

        silenced = [_LIGHTNING_PYTREE_WARNING]
        if val_dataloader is None:
            silenced.append(_NO_VALIDATION_WARNING)
        if any(not encoder.trainable for encoder in trainable_model.model.encoders.values()):
            silenced.append(_FROZEN_EVAL_WARNING)  # frozen encoders stay in eval mode on purpose
        for loader in (train_dataloader, val_dataloader):
            if loader is not None:  # the given loaders collate for the model, as the original's
                trainable_model.setup_dataloader(loader)
        try:
            if trainer.world_size > 1:  # the cache fills once every process runs: each its share
                destroy_process_group_at_exit()  # the group trainer.fit creates
                data = {
                    "datamodule": _CachedData(trainable_model, train_dataloader, val_dataloader)
                }
                silenced.append(_FEW_WORKERS_WARNING)
            else:
                with _silence(_FEW_WORKERS_WARNING, _LIGHTNING_PYTREE_WARNING):
                    fit_train, fit_val = trainable_model.setup_cache(
                        trainer, train_dataloader, val_dataloader
                    )
                if fit_train is not train_dataloader:  # the cache built its own loaders
                    silenced.append(_FEW_WORKERS_WARNING)
                data = {"train_dataloaders": fit_train, "val_dataloaders": fit_val}
            with _silence(*silenced):
                trainer.fit(trainable_model, ckpt_path=ckpt_path, **data)
        except SystemExit as exc:  # Lightning's ways of stopping on a signal, made one
            interrupted = FitInterrupted.from_exit(exc, trainer)
            if interrupted is None or interrupted is exc:
                raise
            raise interrupted from exc
        finally:
            trainable_model.unwrap_cache()

    @staticmethod
    def validate_fit(
        trainable_model: TrainableModel,
        train_dataloader: SimilarityDataLoader,
        val_dataloader: SimilarityDataLoader | None = None,
    ) -> None:
        """Raise before anything expensive runs when the model's parts do not fit together
        (``TrainableModel.check_parts``) or the loaders do not fit the loss.

        Args:
            trainable_model: the model to train.
            train_dataloader: the training loader.
            val_dataloader: the validation loader, or None.
        """
        trainable_model.check_parts()
        loss = trainable_model.loss
        loaders = {"train_dataloader": train_dataloader}
        if val_dataloader is not None:
            loaders["val_dataloader"] = val_dataloader
        for argument, loader in loaders.items():
            if not isinstance(loader, SimilarityDataLoader):
                raise TypeError(
                    f"{argument} must be a PairsSimilarityDataLoader or GroupSimilarityDataLoader, "
                    f"got {type(loader).__name__}"
                )
            for loader_type, loss_type, examples, other_loader in _LOSS_KIND_OF_LOADER:
                if isinstance(loader, loader_type) and not isinstance(loss, loss_type):
                    raise TypeError(
                        f"{loader_type.__name__} needs a {loss_type.__name__}, got "
                        f"{type(loss).__name__}; use e.g. {examples}, or {other_loader}"
                    )

    @staticmethod
    def evaluate(evaluator: Evaluator, dataset: Any, model: SimilarityModel) -> dict[str, Tensor]:
        """Run ``evaluator`` over ``dataset`` (a collection of samples) with ``model``.

        Args:
            evaluator: metrics and the sampler that feeds them.
            dataset: the samples to evaluate on.
            model: the model to evaluate.

        Returns:
            metric name -> value.
        """
        return evaluator.evaluate(dataset, model)

    @staticmethod
    def trainer_defaults(
        trainable_model: TrainableModel | None = None,
        train_dataloader: SimilarityDataLoader | None = None,
    ) -> dict[str, Any]:
        """Keyword arguments of the default ``pl.Trainer``.

        Callbacks, in this order: progress bar, ``EarlyStopping("validation_loss")``, model
        summary. Training runs until early stopping (``max_epochs=-1``); the logging interval
        is capped by the number of batches; checkpointing is off when every encoder is frozen
        and cached (only the head trains, and ``save_servable`` saves it).

        Args:
            trainable_model: the model, to decide about checkpointing (None: not considered).
            train_dataloader: the training loader, to cap the logging interval (None: not
                considered).

        Returns:
            keyword arguments for `pl.Trainer`.
        """
        defaults: dict[str, Any] = {
            "callbacks": [
                QuaterionProgressBar(console_kwargs={"tab_size": 4}),
                EarlyStopping("validation_loss"),
                RichModelSummary(max_depth=3),
            ],
            "accelerator": "auto",
            "devices": 1,
            "max_epochs": -1,
            "enable_model_summary": False,
        }
        if train_dataloader is not None:
            try:
                batches = len(train_dataloader)
            except (TypeError, NotImplementedError):
                batches = 0
            if batches > 0:
                defaults["log_every_n_steps"] = min(50, batches)
        if trainable_model is not None:
            cache_config = trainable_model.configure_caches()
            all_frozen = not any(
                encoder.trainable for encoder in trainable_model.model.encoders.values()
            )
            cached = cache_config is not None and cache_config.cache_type != CacheType.NONE
            if all_frozen and cached:
                defaults["enable_checkpointing"] = False
        return defaults

    @classmethod
    def _fit_defaults(
        cls,
        trainable_model: TrainableModel,
        train_dataloader: SimilarityDataLoader,
        val_dataloader: SimilarityDataLoader | None,
    ) -> dict[str, Any]:
        """``trainer_defaults`` adjusted to whether a validation loader exists."""
        defaults = cls.trainer_defaults(trainable_model, train_dataloader)
        if val_dataloader is None:
            defaults["callbacks"] = [
                callback
                for callback in defaults["callbacks"]
                if not isinstance(callback, EarlyStopping)
            ]
            defaults["max_epochs"] = EPOCHS_WITHOUT_VALIDATION
        return defaults
