"""Move nested batches of tensors between devices."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def move_to_device(obj: Any, device: torch.device | str | None) -> Any:
    """`obj` with every tensor inside (dicts, lists, tuples, namedtuples) moved to `device`.

    Containers are rebuilt, other objects are returned as they are; `device=None` is a no-op.

    Args:
        obj: a tensor or a container of tensors.
        device: the target device, or None.

    Returns:
        the moved copy.
    """
    if device is None:
        return obj
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {key: move_to_device(value, device) for key, value in obj.items()}
    if isinstance(obj, list):
        return [move_to_device(value, device) for value in obj]
    if isinstance(obj, tuple):
        moved = [move_to_device(value, device) for value in obj]
        return type(obj)(*moved) if hasattr(obj, "_fields") else tuple(moved)
    return obj


def first_device(module: nn.Module) -> torch.device:
    """Device of the first parameter or buffer of `module` (CPU when it has none).

    Args:
        module: a torch module.
    """
    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return torch.device("cpu")
