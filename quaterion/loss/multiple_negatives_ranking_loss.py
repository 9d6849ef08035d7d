"""Multiple negatives ranking loss: in-batch negatives for positive pairs."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from quaterion.distances import Distance
from quaterion.loss.pairwise_loss import PairwiseLoss
from quaterion.utils.distributed import gather_with_grad


class MultipleNegativesRankingLoss(PairwiseLoss):
    """Cross-entropy that ranks each anchor's own positive above the other pairs' positives.

    With anchors ``A = E[pairs[:, 0]]`` and positives ``Q = E[pairs[:, 1]]`` (``P`` rows each)::

        S = scale * similarity_matrix(A, Q)                  # (P, P)
        loss = CE(S, arange(P))                               # row i's target is column i
        symmetric: loss = (CE(S, arange(P)) + CE(S^T, arange(P))) / 2

    Every pair must be positive; ``labels`` (``(P,)`` or empty) are only checked, ``subgroups``
    ignored. Note the cosine ``similarity_matrix`` is ``(cos + 1) / 2``, so with the cosine
    distance this equals NT-Xent with temperature ``2 / scale``.

    Shapes: embeddings ``(2P, D)``, pairs ``(P, 2)``, labels ``(P,)`` or empty, subgroups ignored.

    Differs from the original: ``get_config_dict`` works (it recursed) and non-positive labels
    raise ValueError instead of AssertionError.

    Args:
        scale: multiplier of the similarities (inverse temperature).
        distance_metric_name: similarity used for the logits.
        symmetric: also rank anchors for each positive.
        distributed: use the pairs of every process (torch.distributed) as negatives; see
            :mod:`quaterion.utils.distributed` for the gradient scaling.
    """

    def __init__(
        self,
        scale: float = 20.0,
        distance_metric_name: Distance = Distance.COSINE,
        symmetric: bool = False,
        distributed: bool = False,
    ):
        super().__init__(distance_metric_name=distance_metric_name)
        self.scale = scale
        self.symmetric = symmetric
        self.distributed = distributed

    def get_config_dict(self) -> dict[str, Any]:
        return {
            **super().get_config_dict(),
            "scale": self.scale,
            "symmetric": self.symmetric,
            "distributed": self.distributed,
        }

    def forward(
        self,
        embeddings: Tensor,
        pairs: Tensor,
        labels: Tensor | None = None,
        subgroups: Tensor | None = None,
    ) -> Tensor:
        """Loss of ``P`` positive pairs; see the class docstring for the formula."""
        self.check_inputs(embeddings, pairs, labels, subgroups)
        if labels is not None and labels.numel() and not bool((labels == 1).all()):
            raise ValueError(
                "MultipleNegativesRankingLoss treats every pair as positive, but "
                f"{int((labels != 1).sum())} of {labels.numel()} labels are not 1.0; drop the "
                "negative pairs from the data or use ContrastiveLoss for labelled negatives"
            )
        anchors, positives = embeddings[pairs[:, 0]], embeddings[pairs[:, 1]]  # (P, D) each
        if self.distributed:
            anchors, positives = gather_with_grad(anchors), gather_with_grad(positives)
        logits = self.distance_metric.similarity_matrix(anchors, positives) * self.scale  # (P, P)
        targets = torch.arange(len(logits), device=logits.device)
        loss = F.cross_entropy(logits, targets)
        if self.symmetric:
            loss = (loss + F.cross_entropy(logits.T, targets)) / 2
        return loss
