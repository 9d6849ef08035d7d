"""Enumerations shared by the training code."""

from __future__ import annotations

from enum import Enum


class TrainStage(str, Enum):
    """Stage of a Lightning run, formatted as its value: ``f"{TrainStage.TRAIN}_loss"`` is
    ``"train_loss"``.

    ``str``/``format`` are pinned to the value because Python 3.11 changed mixed-in enums to format
    as ``TrainStage.TRAIN``, which would rename every logged metric.
    """

    TRAIN = "train"
    VALIDATION = "validation"
    TEST = "test"

    __str__ = str.__str__
    __format__ = str.__format__
