"""Shared parts of the group losses that learn one kernel column per group."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from quaterion.loss.group_loss import GroupLoss


class ClassKernelLoss(GroupLoss):
    """A GroupLoss with a learnable ``kernel`` ``(D, C)``, one column per group, initialised from
    ``N(0, 0.01^2)``. The kernel is a parameter of the loss: include it in the optimizer.

    Args:
        embedding_size: ``D``, the width of the embeddings.
        num_groups: ``C``, the number of classes.
    """

    def __init__(self, embedding_size: int, num_groups: int):
        super().__init__()
        self.check_sizes(embedding_size, num_groups)
        self.embedding_size = embedding_size
        self.num_groups = num_groups
        self.kernel = nn.Parameter(torch.empty(embedding_size, num_groups))
        nn.init.normal_(self.kernel, std=0.01)

    def get_config_dict(self) -> dict[str, Any]:
        return {"embedding_size": self.embedding_size, "num_groups": self.num_groups}
