"""Shared skeleton of the group losses that mine pairs from a distance matrix."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from quaterion.distances import Distance
from quaterion.loss.group_loss import GroupLoss
from quaterion.loss.similarity_loss import zero_loss
from quaterion.utils import get_anchor_negative_mask, get_anchor_positive_mask
from quaterion.utils.distributed import gather_with_grad


class MinedGroupLoss(GroupLoss):
    """A GroupLoss defined by `_mined_loss(distances, positive, negative)` over a matrix.

    `forward` mines within the batch (optionally gathered from all processes when the subclass
    sets `distributed`), `xbm_loss` mines batch anchors against a cross-batch memory: one body,
    two sources of candidates. Subclasses list their `MINING_STRATEGIES` and write
    `_mined_loss`; margin, mining and distributed are validated and configured here once.

    Args:
        margin: required gap between positive and negative distances.
        distance_metric_name: distance between objects.
        mining: one of the subclass's ``MINING_STRATEGIES``.
        distributed: mine over the objects of every process (torch.distributed).
    """

    MINING_STRATEGIES: tuple[str, ...] = ()

    def __init__(
        self,
        margin: float = 0.5,
        distance_metric_name: Distance = Distance.COSINE,
        mining: str = "hard",
        distributed: bool = False,
    ):
        super().__init__(distance_metric_name=distance_metric_name)
        if mining not in self.MINING_STRATEGIES:
            raise ValueError(
                f"Unrecognized mining strategy: {mining}. "
                f"Must be one of {', '.join(self.MINING_STRATEGIES)}"
            )
        self.margin = margin
        self.mining = mining
        self.distributed = distributed

    def get_config_dict(self) -> dict[str, Any]:
        return {
            **super().get_config_dict(),
            "margin": self.margin,
            "mining": self.mining,
            "distributed": self.distributed,
        }

    def forward(self, embeddings: Tensor, groups: Tensor) -> Tensor:
        """Loss of a batch ``(B, D)`` with group ids ``(B,)``."""
        self.check_inputs(embeddings, groups)
        if self.distributed:
            embeddings, groups = gather_with_grad(embeddings), gather_with_grad(groups)
        distances = self.distance_metric.distance_matrix(embeddings)  # (B, B)
        return self._mined_loss(
            distances, get_anchor_positive_mask(groups), get_anchor_negative_mask(groups)
        )

    def xbm_loss(
        self,
        embeddings: Tensor,
        groups: Tensor,
        memory_embeddings: Tensor,
        memory_groups: Tensor,
    ) -> Tensor:
        """Same loss with batch anchors ``(B, D)`` and candidates from memory ``(M, D)``.

        Every mining strategy is supported; an empty memory gives 0.
        """
        self.check_inputs(embeddings, groups)
        self.check_inputs(memory_embeddings, memory_groups)
        if len(memory_embeddings) == 0:
            return zero_loss(embeddings)
        distances = self.distance_metric.distance_matrix(embeddings, memory_embeddings)  # (B, M)
        return self._mined_loss(
            distances,
            get_anchor_positive_mask(groups, memory_groups),
            get_anchor_negative_mask(groups, memory_groups),
        )

    def _mined_loss(self, distances: Tensor, positive: Tensor, negative: Tensor) -> Tensor:
        """Loss from a distance matrix ``(A, N)`` and its positive / negative masks ``(A, N)``."""
        raise NotImplementedError
