"""Center loss: pull embeddings towards a learnable centre of their group."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from quaterion.loss.group_loss import GroupLoss


class CenterLoss(GroupLoss):
    """Center loss (Wen et al., 2016)::

        loss = lambda_c * mean_{i, d} (normalize(E)[i, d] - centers[groups[i], d])^2

    Shapes: embeddings ``(B, D)``, groups ``(B,)`` ids in ``[0, num_groups)``; ``centers``
    ``(num_groups, D)`` is a learnable parameter (xavier-uniform init, not normalised) of the loss:
    include it in the optimizer. Usually combined with a discriminative loss.

    Differs from the original: ``get_config_dict`` returns the constructor arguments and group ids
    out of range raise ValueError.

    Args:
        embedding_size: ``D``.
        num_groups: number of groups.
        lambda_c: weight of the loss.
    """

    def __init__(self, embedding_size: int, num_groups: int, lambda_c: float = 0.5):
        super().__init__()
        self.check_sizes(embedding_size, num_groups)
        self.embedding_size = embedding_size
        self.num_groups = num_groups
        self.lambda_c = lambda_c
        self.centers = nn.Parameter(torch.empty(num_groups, embedding_size))
        nn.init.xavier_uniform_(self.centers)

    def get_config_dict(self) -> dict[str, Any]:
        return {
            "embedding_size": self.embedding_size,
            "num_groups": self.num_groups,
            "lambda_c": self.lambda_c,
        }

    def forward(self, embeddings: Tensor, groups: Tensor) -> Tensor:
        """Loss of a batch ``(B, D)`` with group ids ``(B,)``."""
        self.check_inputs(embeddings, groups)
        self.check_class_ids(groups, self.num_groups)
        return self.lambda_c * F.mse_loss(F.normalize(embeddings, dim=1), self.centers[groups])
