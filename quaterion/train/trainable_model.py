"""TrainableModel: what to train (encoders, head, loss, metrics) and the Lightning steps."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_warn
from torch import Tensor

from quaterion.dataset.similarity_data_loader import SimilarityDataLoader
from quaterion.dataset.train_collator import TrainCollator
from quaterion.eval.attached_metric import AttachedMetric
from quaterion.loss.similarity_loss import SimilarityLoss
from quaterion.train.cache import CacheConfig, CacheType
from quaterion.train.cache_mixin import CacheMixin
from quaterion.train.xbm import XbmConfig
from quaterion.train.xbm.xbm_loss import XbmLoss
from quaterion.utils.enums import TrainStage
from quaterion_models import SimilarityModel
from quaterion_models.encoders import Encoder
from quaterion_models.heads import EncoderHead


def _check_encoders(encoders: Any) -> None:
    """TypeError unless `configure_encoders` returned an Encoder or a dict of Encoders."""
    values = encoders.values() if isinstance(encoders, dict) else [encoders]
    wrong = [type(value).__name__ for value in values if not isinstance(value, Encoder)]
    if wrong:
        got = f"a dict holding {', '.join(wrong)}" if isinstance(encoders, dict) else wrong[0]
        raise TypeError(
            f"configure_encoders must return an Encoder or a dict of Encoders, got {got}; "
            "subclass quaterion_models.encoders.Encoder"
        )


def _check_head(head: Any, encoders_size: int) -> None:
    """TypeError / ValueError unless `configure_head` returned an EncoderHead that takes
    `encoders_size`-wide inputs (heads without an input size, like SequentialHead, pass)."""
    if not isinstance(head, EncoderHead):
        raise TypeError(
            f"configure_head must return an EncoderHead, got {type(head).__name__}; return a "
            "head from quaterion_models.heads built with the input_embedding_size it is given"
        )
    head_size = getattr(head, "input_embedding_size", None)
    if head_size is not None and head_size != encoders_size:
        raise ValueError(
            f"configure_head returned a head with input_embedding_size={head_size}, but the "
            f"encoders output {encoders_size} values per object; pass input_embedding_size to "
            "the head"
        )


class TrainableModel(pl.LightningModule, CacheMixin):
    """Base class of models to train: subclass it and implement the ``configure_*`` hooks.

    ``__init__`` calls, in order: ``configure_encoders``, ``configure_caches``,
    ``configure_head(input_embedding_size)``, ``configure_metrics``, builds the
    ``SimilarityModel``, then ``configure_loss`` and ``configure_xbm``. Set your own attributes
    before calling ``super().__init__()``. ``configure_optimizers`` is Lightning's. As in the
    original, a model may be built before its parts are final (a placeholder head or loss
    replaced later): ``check_parts``, called by ``Quaterion.validate_fit``, checks them when a
    fit starts. Only the encoders are checked at once, since the head's input size needs them.

    Each step encodes the batch, computes the loss (plus the XBM term when configured) and logs
    ``<stage>_loss`` and ``<metric name>_<stage>`` (stages: train, validation, test). A NaN or
    infinite loss raises ValueError naming the stage, the batch and the part that produced it
    (the cost is one scalar ``isfinite`` check per step).

    Args:
        *args: passed to `LightningModule`.
        **kwargs: passed to `LightningModule`.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        encoders = self.configure_encoders()
        _check_encoders(encoders)  # needed now: the head's input size comes from them
        self.cache_config: CacheConfig = self.configure_caches() or CacheConfig(
            cache_type=CacheType.NONE
        )
        head = self.configure_head(SimilarityModel.get_encoders_output_size(encoders))
        metrics = self.configure_metrics()
        self.attached_metrics: list[AttachedMetric] = (
            [metrics] if isinstance(metrics, AttachedMetric) else list(metrics or [])
        )
        self._model = SimilarityModel(encoders=encoders, head=head)
        self._loss = self.configure_loss()
        self._xbm_config = self.configure_xbm()
        self._xbm: XbmLoss | None = None  # built on first use by `_xbm_term`

    # ---- configuration hooks ----

    def configure_encoders(self) -> Encoder | dict[str, Encoder]:
        """The encoder, or a dict of named encoders; runs on init and on checkpoint loading."""
        raise NotImplementedError(f"{type(self).__name__} must implement configure_encoders")

    def configure_caches(self) -> CacheConfig | None:
        """Which frozen encoders cache their embeddings (None: no cache)."""
        return None

    def configure_head(self, input_embedding_size: int) -> EncoderHead:
        """The head on top of the concatenated encoder outputs.

        Args:
            input_embedding_size: width of the encoders' concatenated output.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement configure_head")

    def configure_loss(self) -> SimilarityLoss:
        """The loss; a PairwiseLoss for pair loaders, a GroupLoss for group loaders."""
        raise NotImplementedError(f"{type(self).__name__} must implement configure_loss")

    def configure_metrics(self) -> AttachedMetric | list[AttachedMetric] | None:
        """Batch-wise metrics logged during training and validation (none by default)."""
        return []

    def configure_xbm(self) -> XbmConfig | None:
        """Cross-Batch Memory settings; needs a GroupLoss with ``xbm_loss`` (None: off)."""
        return None

    # ---- model parts ----

    @property
    def model(self) -> SimilarityModel:
        """The SimilarityModel being trained."""
        return self._model

    @property
    def loss(self) -> SimilarityLoss:
        """The loss function."""
        return self._loss

    def check_parts(self) -> None:
        """Raise a TypeError / ValueError naming the hook unless encoders, head, loss and XBM
        settings fit together; ``Quaterion.validate_fit`` calls it before caching or training."""
        encoders = self._model.encoders
        _check_encoders(encoders)
        _check_head(self._model.head, SimilarityModel.get_encoders_output_size(encoders))
        if not isinstance(self._loss, SimilarityLoss):
            raise TypeError(
                f"configure_loss must return a SimilarityLoss, got {type(self._loss).__name__}; "
                "return a loss from quaterion.loss, e.g. TripletLoss() (a GroupLoss) for group "
                "loaders or ContrastiveLoss() (a PairwiseLoss) for pair loaders"
            )
        self._xbm_term()  # XbmLoss checks the loss and the XbmConfig

    def _xbm_term(self) -> XbmLoss | None:
        """The XBM term of the current loss and settings (None: XBM off); built on first use and
        kept, with its memory, while loss and settings stay the same objects."""
        if self._xbm_config is None:
            return None
        xbm = self._xbm
        if xbm is None or xbm.loss is not self._loss or xbm.config is not self._xbm_config:
            xbm = XbmLoss(self._xbm_config, self._loss, self._model.head.output_size)
            self._xbm = xbm
        return xbm

    # ---- Lightning steps ----

    def process_results(
        self,
        embeddings: Tensor,
        targets: dict[str, Any],
        batch_idx: int,
        stage: TrainStage,
        **kwargs: Any,
    ) -> None:
        """Hook for extra evaluation of each batch's embeddings [B, D]; no-op by default.

        Args:
            embeddings: `[B, D]` embeddings of the batch.
            targets: the batch's targets (`groups`, or `pairs`, `labels`, `subgroups`).
            batch_idx: index of the batch in the epoch.
            stage: training, validation or test.
            **kwargs: further arguments of the step.
        """

    def training_step(self, batch: Any, batch_idx: int, **kwargs: Any) -> Tensor:
        return self._common_step(batch, batch_idx, TrainStage.TRAIN, **kwargs)[0]

    def validation_step(self, batch: Any, batch_idx: int, **kwargs: Any) -> dict[str, Tensor]:
        """Returns the batch's embeddings ``[B, D]`` (detached), which callbacks such as
        ``RetrievalMetricsCallback`` read in ``on_validation_batch_end``."""
        embeddings = self._common_step(batch, batch_idx, TrainStage.VALIDATION, **kwargs)[1]
        return {"embeddings": embeddings.detach()}

    def test_step(self, batch: Any, batch_idx: int, **kwargs: Any) -> None:
        self._common_step(batch, batch_idx, TrainStage.TEST, **kwargs)

    def _common_step(
        self, batch: Any, batch_idx: int, stage: TrainStage, **kwargs: Any
    ) -> tuple[Tensor, Tensor]:
        """``(loss, embeddings)`` of a batch, logged for ``stage``."""
        features, targets = batch
        embeddings = self._model(features)  # [B, D]
        loss = self._loss(embeddings=embeddings, **targets)
        xbm = self._xbm_term() if stage is TrainStage.TRAIN else None
        if xbm is not None:
            loss = loss + xbm(embeddings, targets["groups"], self.global_step)
        if not torch.isfinite(loss):  # one scalar check per step; the message is built after
            raise ValueError(self._non_finite_message(features, embeddings, batch_idx, stage))
        batch_size = embeddings.shape[0]
        # epoch-level values of validation / test are averaged over processes under DDP
        sync_dist = stage is not TrainStage.TRAIN
        if stage is not TrainStage.TRAIN or self._logs_train_step(batch_idx):
            self.log(
                f"{stage.value}_loss",
                loss,
                prog_bar=True,
                batch_size=batch_size,
                sync_dist=sync_dist,
            )
        for metric in self.attached_metrics:
            if stage in metric.stages:
                # the metric's own log options win, e.g. an explicit sync_dist
                options = {"batch_size": batch_size, "sync_dist": sync_dist, **metric.log_options}
                value = metric.compute(embeddings, **targets)
                if isinstance(value, dict):  # metrics reporting several values at once
                    for key, item in value.items():
                        self.log(f"{metric.name}_{key}_{stage.value}", item, **options)
                else:
                    self.log(f"{metric.name}_{stage.value}", value, **options)
        self.process_results(
            embeddings=embeddings, targets=targets, batch_idx=batch_idx, stage=stage, **kwargs
        )
        return loss, embeddings

    def _logs_train_step(self, batch_idx: int) -> bool:
        """Whether this training step logs ``train_loss``: when Lightning writes to the loggers
        after this step (its own ``should_update_logs``, which follows
        ``Trainer(log_every_n_steps)``, 0 meaning never) and on each epoch's last batch, so
        loggers and epoch-end callbacks see the same values as with per-step logging while
        the other steps skip Lightning's ~0.4 ms ``log`` call."""
        trainer = self._trainer
        if trainer is None:
            return True
        last_batch = batch_idx + 1 >= trainer.num_training_batches
        # the connector is private, but Lightning's own callbacks (LearningRateMonitor,
        # DeviceStatsMonitor) decide their logging with this same property
        return last_batch or trainer._logger_connector.should_update_logs

    def _non_finite_message(
        self, features: Any, embeddings: Tensor, batch_idx: int, stage: TrainStage
    ) -> str:
        """Say where a NaN / infinite loss of a step comes from (error path only)."""
        where = f"in {stage.value} batch {batch_idx}"
        if torch.isfinite(embeddings).all():
            return (
                f"The loss is NaN or infinite {where} although the embeddings are finite; "
                "check the loss settings and the batch's targets (scores, groups)"
            )
        kind = "NaN" if torch.isnan(embeddings).any() else "infinite"
        culprit = "the head"
        with torch.no_grad():
            for key, encoder in self._model.encoders.items():
                if not torch.isfinite(encoder(features["data"][key])).all():
                    culprit = f"encoder {key!r} ({type(encoder).__name__})"
                    break
        return (
            f"{kind} embeddings {where}, produced by {culprit}; check its inputs and weights "
            "(a too high learning rate can make weights diverge)"
        )

    def on_fit_end(self) -> None:
        """Warn when the XBM memory never took part: the fit ended before ``start_iteration``."""
        config = self._xbm_config
        steps = self.trainer.global_step
        if config is not None and steps <= config.start_iteration:
            rank_zero_warn(
                f"XbmConfig.start_iteration={config.start_iteration} was never reached: the fit "
                f"ended after {steps} training steps, so the cross-batch memory never took "
                "part in the loss; set start_iteration below the number of steps, or train longer"
            )

    # ---- outside the loop ----

    def save_servable(self, path: str) -> None:
        """Save the SimilarityModel (original encoders, not cache wrappers) for serving.

        Args:
            path: the directory to write.
        """
        self.unwrap_cache()
        self._model.save(path)

    def setup_dataloader(self, dataloader: SimilarityDataLoader) -> None:
        """Make ``dataloader`` yield model-ready batches, collated by each encoder's own function.

        Idempotent: a loader set up before keeps its original pre-collate function, so calling
        this again (e.g. after the encoders changed) replaces the collator instead of nesting it.

        Args:
            dataloader: a similarity data loader.
        """
        dataloader.collate_fn = TrainCollator.for_encoders(
            dataloader.collate_fn, self._model.encoders
        )
