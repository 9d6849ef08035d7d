"""Shared parts of the angular-margin softmax losses (ArcFace, CosFace)."""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor

from quaterion.loss.class_kernel_loss import ClassKernelLoss


class MarginSoftmaxLoss(ClassKernelLoss):
    """Cross-entropy over ``scale * cos(theta)`` logits with a margin on the target class.

    ``cos(theta) = normalize(E, dim=1) @ normalize(W, dim=0)``: ``(B, C)``, where ``W`` is the
    ``kernel`` parameter ``(D, C)`` initialised from ``N(0, 0.01^2)``. Subclasses define
    :meth:`target_logit`, the margin-modified cosine of each row's target class.

    Args:
        embedding_size: ``D``, the width of the embeddings.
        num_groups: ``C``, the number of classes.
        scale: logit scale ``s``.
        margin: the margin applied to the target class.
    """

    def __init__(self, embedding_size: int, num_groups: int, scale: float, margin: float):
        super().__init__(embedding_size, num_groups)
        self.scale = scale
        self.margin = margin

    def get_config_dict(self) -> dict[str, Any]:
        return {**super().get_config_dict(), "scale": self.scale, "margin": self.margin}

    def target_logit(self, target_cosine: Tensor) -> Tensor:
        """Unscaled logit of the target class from its cosine ``(B, 1)``.

        Args:
            target_cosine: ``(B,)`` cosine of each row with its target class.

        Returns:
            ``(B,)`` the margin-modified cosines.
        """
        raise NotImplementedError

    def forward(self, embeddings: Tensor, groups: Tensor) -> Tensor:
        """Loss of a batch ``(B, D)`` with class ids ``(B,)``."""
        self.check_inputs(embeddings, groups)
        self.check_class_ids(groups, self.num_groups)
        cosine = F.normalize(embeddings, dim=1) @ F.normalize(self.kernel, dim=0)  # (B, C)
        targets = groups.unsqueeze(1)  # (B, 1)
        logits = cosine.scatter(1, targets, self.target_logit(cosine.gather(1, targets)))
        return F.cross_entropy(self.scale * logits, groups)
