"""Activation chosen by name, so that head configs stay JSON."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ActivationFromFnName(nn.Module):
    """Applies `torch.nn.functional.<activation_fn>` (e.g. "relu", "gelu", "tanh").

    Args:
        activation_fn: name of a function of `torch.nn.functional`.
    """

    def __init__(self, activation_fn: str):
        super().__init__()
        function = getattr(F, activation_fn, None)
        if not callable(function):
            raise ValueError(
                f"Unknown activation_fn {activation_fn!r}: it must name a function of "
                "torch.nn.functional, e.g. 'relu', 'gelu', 'tanh'"
            )
        self.activation_fn = activation_fn
        self._function = function

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """The activation applied to `inputs`.

        Args:
            inputs: any tensor.

        Returns:
            a tensor of the same shape.
        """
        return self._function(inputs)

    def extra_repr(self) -> str:
        return repr(self.activation_fn)
