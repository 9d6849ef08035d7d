"""Softmax (classification) loss over group ids."""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor

from quaterion.loss.class_kernel_loss import ClassKernelLoss


class SoftmaxLoss(ClassKernelLoss):
    """Cross-entropy of a learnable linear classifier over the embeddings::

        loss = CE(E @ W / temperature, groups)

    Shapes: embeddings ``(B, D)``, groups ``(B,)`` integer ids in ``[0, num_groups)``, ``W`` is the
    ``kernel`` parameter ``(D, num_groups)`` initialised from ``N(0, 0.01^2)``. The kernel is a
    parameter of the loss: include it in the optimizer.

    Differs from the original: ``get_config_dict`` returns the constructor arguments, and group
    ids out of range raise ValueError.

    Args:
        embedding_size: ``D``.
        num_groups: number of classes.
        temperature: divides the logits.
    """

    def __init__(self, embedding_size: int, num_groups: int, temperature: float = 0.05):
        super().__init__(embedding_size, num_groups)
        self.temperature = temperature

    def get_config_dict(self) -> dict[str, Any]:
        return {**super().get_config_dict(), "temperature": self.temperature}

    def forward(self, embeddings: Tensor, groups: Tensor) -> Tensor:
        """Loss of a batch ``(B, D)`` with class ids ``(B,)``."""
        self.check_inputs(embeddings, groups)
        self.check_class_ids(groups, self.num_groups)
        return F.cross_entropy(embeddings @ self.kernel / self.temperature, groups)
