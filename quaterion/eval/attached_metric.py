"""A metric computed on every training and validation batch and logged by Lightning."""

from __future__ import annotations

from typing import Any

from quaterion.eval.base_metric import BaseMetric
from quaterion.utils.enums import TrainStage


class AttachedMetric:
    """Wraps a metric with the name and ``self.log`` options it is logged with.

    Attribute lookups it does not answer itself (``compute``, ``update``, ``reset``, ``k``, ...)
    go to the wrapped metric. Attached metrics are computed per batch with ``compute``; Lightning
    aggregates them over the epoch when ``on_epoch`` is set.

    Args:
        name: logged as ``<name>_<stage>``.
        metric: the metric to compute.
        logger: passed to ``LightningModule.log``: send the value to the loggers.
        prog_bar: passed to ``LightningModule.log``: show the value in the progress bar.
        on_step: passed to ``LightningModule.log``: log every step.
        on_epoch: passed to ``LightningModule.log``: aggregate and log once per epoch.
        **log_options: any other ``log`` keyword arguments.
    """

    def __init__(
        self,
        name: str,
        metric: BaseMetric,
        logger: bool = True,
        prog_bar: bool = False,
        on_step: bool | None = None,
        on_epoch: bool | None = None,
        **log_options: Any,
    ):
        self._metric = metric
        self.name = name
        self.stages = [TrainStage.TRAIN, TrainStage.VALIDATION]
        self.log_options = {
            "logger": logger,
            "prog_bar": prog_bar,
            "on_step": on_step,
            "on_epoch": on_epoch,
            **log_options,
        }

    def __getattr__(self, item: str) -> Any:
        # Only reached when normal lookup fails. `_metric`/`name` are missing while copy/pickle
        # rebuild the object, and dunders must not come from the metric (copy would copy it).
        if item in ("_metric", "name") or (item.startswith("__") and item.endswith("__")):
            raise AttributeError(item)
        try:
            return getattr(self._metric, item)
        except AttributeError:
            raise AttributeError(
                f"`AttachedMetric` object ({self.name}) has no attribute {item}"
            ) from None
