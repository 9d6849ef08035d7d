"""Undo the cache set-up when a fit ends."""

from __future__ import annotations

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback


class CleanupCallback(Callback):
    """Puts the original encoders back (``unwrap_cache``) when fitting ends, even on error.

    Loaders are restored by ``Quaterion.fit`` after ``trainer.fit`` returns.
    """

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit":
            pl_module.unwrap_cache()
