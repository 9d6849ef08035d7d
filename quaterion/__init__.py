"""Quaterion: fine-tune similarity models on top of frozen, cached encoders.

`Quaterion` and `TrainableModel` are imported on first access, so that light subpackages
(`quaterion.loss`, `quaterion.distances`, `quaterion.eval`, ...) load without Lightning.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from quaterion.main import Quaterion
    from quaterion.train.trainable_model import TrainableModel

__all__ = ["Quaterion", "TrainableModel"]

_LAZY = {"Quaterion": "quaterion.main", "TrainableModel": "quaterion.train.trainable_model"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'quaterion' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
