"""Online contrastive loss: contrastive loss over the pairs mined inside a batch of groups."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from quaterion.loss.mined_group_loss import MinedGroupLoss


class OnlineContrastiveLoss(MinedGroupLoss):
    """Contrastive loss on pairs mined from a batch of grouped objects.

    With ``D = distance_matrix(E)``, positives ``pos[i, j]`` (same group, ``i != j``) and negatives
    ``neg[i, j]`` (different groups)::

        all:  L+ = mean_{pos} D[i, j]            L- = mean_{neg} relu(m - D[i, j])
        hard: L+ = mean_i max_{j in pos(i)} D    L- = mean_i relu(m - min_{j in neg(i)} D)
        loss = 0.5 * (L+ + L-)                   # distances are not squared

    ``hard`` averages over the anchors that have a (non-zero) hardest positive, respectively a
    negative. Shapes: embeddings ``(B, D)``, groups ``(B,)``.

    Differs from the original: an object is no longer its own negative (the original took
    ``neg = not pos``, so ``hard`` always mined the anchor itself at distance 0 and ``all`` added
    ``m`` per anchor), so the values differ.

    Args:
        margin: negatives closer than this are pushed apart.
        distance_metric_name: distance between objects.
        mining: ``"all"`` pairs or the ``"hard"``-est positive and negative of each anchor.
        distributed: mine over the objects of every process (torch.distributed); see
            :mod:`quaterion.utils.distributed` for the gradient scaling.
    """

    MINING_STRATEGIES = ("all", "hard")

    def _mined_loss(self, distances: Tensor, positive: Tensor, negative: Tensor) -> Tensor:
        if self.mining == "all":
            positive_loss = (distances * positive).sum() / positive.sum().clamp_min(1)
            negative_loss = (
                F.relu(self.margin - distances) * negative
            ).sum() / negative.sum().clamp_min(1)
        else:
            hardest_positive = (distances * positive).max(dim=1).values  # (B,)
            positive_loss = hardest_positive.sum() / torch.count_nonzero(
                hardest_positive
            ).clamp_min(1)
            has_negative = negative.any(dim=1)  # (B,)
            hardest_negative = distances.masked_fill(~negative, float("inf")).min(dim=1).values
            negative_terms = torch.where(
                has_negative,
                F.relu(self.margin - hardest_negative),
                torch.zeros_like(hardest_negative),
            )
            negative_loss = negative_terms.sum() / has_negative.sum().clamp_min(1)
        return 0.5 * (positive_loss + negative_loss)
