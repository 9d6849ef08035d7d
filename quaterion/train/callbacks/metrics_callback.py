"""Reset the state of attached metrics at stage and epoch boundaries."""

from __future__ import annotations

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback


class MetricsCallback(Callback):
    """Resets every attached metric when sanity checking ends and when an epoch starts or ends."""

    @staticmethod
    def reset_metrics(trainable_model: pl.LightningModule) -> None:
        """Reset each metric of ``trainable_model.attached_metrics``.

        Args:
            trainable_model: the model whose metrics are reset.
        """
        for metric in trainable_model.attached_metrics:
            metric.reset()

    def on_sanity_check_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.reset_metrics(pl_module)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.reset_metrics(pl_module)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.reset_metrics(pl_module)

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.reset_metrics(pl_module)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.reset_metrics(pl_module)
