"""Circle loss over the pairs of a batch of grouped objects."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from quaterion.distances import Distance
from quaterion.loss.group_loss import GroupLoss
from quaterion.loss.similarity_loss import zero_loss


class CircleLoss(GroupLoss):
    """Circle loss (Sun et al., 2020) over all pairs ``i < j`` of the batch at once.

    With ``S = similarity_matrix(E)``, ``sp`` the similarities of same-group pairs and ``sn`` of
    different-group pairs (upper triangle, ``i < j``), ``m`` the margin, ``g`` the scale::

        ap = relu(1 + m - sp),  an = relu(sn + m)            (detached weights)
        loss = softplus(logsumexp(g * an * (sn - m)) + logsumexp(-g * ap * (sp - (1 - m))))

    The loss is 0 when the batch has no positive or no negative pair. Shapes: embeddings
    ``(B, D)``, groups ``(B,)``. With the cosine distance, ``S = (cos + 1) / 2``.

    Differs from the original: the weights are the paper's (the original used ``1 + m + sp`` and
    ``sn - m``), and ``get_config_dict`` returns ``margin`` and ``scale_factor`` too.

    Args:
        margin: relaxation ``m``.
        scale_factor: scale ``g``.
        distance_metric_name: similarity between objects.
    """

    def __init__(
        self,
        margin: float = 0.25,
        scale_factor: float = 256,
        distance_metric_name: Distance = Distance.COSINE,
    ):
        super().__init__(distance_metric_name=distance_metric_name)
        self.margin = margin
        self.scale_factor = scale_factor

    def get_config_dict(self) -> dict[str, Any]:
        return {
            **super().get_config_dict(),
            "margin": self.margin,
            "scale_factor": self.scale_factor,
        }

    def forward(self, embeddings: Tensor, groups: Tensor) -> Tensor:
        """Loss of a batch ``(B, D)`` with group ids ``(B,)``."""
        self.check_inputs(embeddings, groups)
        similarities = self.distance_metric.similarity_matrix(embeddings)  # (B, B)
        upper = torch.ones_like(similarities, dtype=torch.bool).triu(diagonal=1)
        same_group = groups.unsqueeze(1) == groups.unsqueeze(0)
        positive, negative = same_group & upper, ~same_group & upper
        if not (bool(positive.any()) and bool(negative.any())):
            return zero_loss(embeddings)
        detached = similarities.detach()
        m, g = self.margin, self.scale_factor
        positive_logits = -g * F.relu(1 + m - detached) * (similarities - (1 - m))
        negative_logits = g * F.relu(detached + m) * (similarities - m)
        return F.softplus(
            _masked_logsumexp(positive_logits, positive)
            + _masked_logsumexp(negative_logits, negative)
        )


def _masked_logsumexp(values: Tensor, mask: Tensor) -> Tensor:
    """``log(sum(exp(values[mask])))`` over the whole (non-empty) mask: 0-dim."""
    return values.masked_fill(~mask, float("-inf")).flatten().logsumexp(dim=0)
