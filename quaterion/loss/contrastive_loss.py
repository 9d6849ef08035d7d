"""Contrastive loss over labelled pairs."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from quaterion.distances import Distance
from quaterion.loss.pairwise_loss import PairwiseLoss
from quaterion.utils.distributed import gather_pairs, gather_with_grad


class ContrastiveLoss(PairwiseLoss):
    """Contrastive loss (Hadsell et al., 2006) with optional cross-subgroup negatives.

    For pair ``i = (a, b)`` with score ``y_i`` and rowwise distance ``d_i = distance(E_a, E_b)``::

        l_i = 0.5 * (y_i * d_i^2 + (1 - y_i) * relu(m - d_i)^2)

    When ``subgroups`` holds more than one value, each object ``k`` also gets its nearest object
    from another subgroup ``n(k)`` as a negative: ``l_i += relu(m - d_a)^2 + relu(m - d_b)^2`` with
    ``d_k = distance(E_k, E_n(k))``. The loss is the mean (``size_average``) or sum of ``l_i``.

    Shapes: embeddings ``(2P, D)``, pairs ``(P, 2)``, labels ``(P,)``, subgroups ``(2P,)``.

    Differs from the original: the subgroup negative is measured with the same rowwise
    ``distance`` as the pairs (the original measured it with ``distance_matrix``, half the scale
    for cosine, so one margin meant two things). Without subgroups the values are unchanged.

    Args:
        distance_metric_name: distance between the objects of a pair.
        margin: negatives closer than this are pushed apart.
        size_average: mean over pairs if True, else sum.
        distributed: gather pairs from every process (torch.distributed) before computing the
            loss, so that subgroup negatives span the global batch; see
            :mod:`quaterion.utils.distributed` for the gradient scaling.
    """

    def __init__(
        self,
        distance_metric_name: Distance = Distance.COSINE,
        margin: float = 0.5,
        size_average: bool = True,
        distributed: bool = False,
    ):
        super().__init__(distance_metric_name=distance_metric_name)
        self.margin = margin
        self.size_average = size_average
        self.distributed = distributed

    def get_config_dict(self) -> dict[str, Any]:
        return {
            **super().get_config_dict(),
            "margin": self.margin,
            "size_average": self.size_average,
            "distributed": self.distributed,
        }

    def forward(
        self,
        embeddings: Tensor,
        pairs: Tensor,
        labels: Tensor,
        subgroups: Tensor | None = None,
        **kwargs: Any,
    ) -> Tensor:
        """Loss of ``P`` labelled pairs; see the class docstring for the formula.

        ``subgroups`` may be None or empty (no cross-subgroup negatives).

        Args:
            embeddings: ``(2P, D)`` embeddings of the objects of the ``P`` pairs.
            pairs: ``(P, 2)`` rows of ``embeddings`` holding each pair's two objects.
            labels: ``(P,)`` score of each pair: 1.0 similar, 0.0 dissimilar.
            subgroups: ``(2P,)`` subgroup of each object; objects of different subgroups may serve
                as negatives.
            **kwargs: other targets of the loader, ignored.
        """
        self.check_inputs(embeddings, pairs, labels, subgroups)
        if labels is None or labels.numel() != len(pairs):
            raise ValueError(
                f"ContrastiveLoss needs a score per pair: labels of shape ({len(pairs)},), "
                f"got {None if labels is None else tuple(labels.shape)}"
            )
        if subgroups is None or subgroups.numel() == 0:
            subgroups = embeddings.new_zeros(len(embeddings))
        if self.distributed:
            pairs = gather_pairs(pairs, len(embeddings))
            embeddings = gather_with_grad(embeddings)
            labels = gather_with_grad(labels)
            subgroups = gather_with_grad(subgroups)
        num_pairs = len(pairs)
        first, second = pairs[:, 0], pairs[:, 1]  # (P,) rows of each pair's objects
        use_subgroups = len(subgroups) > 1 and bool((subgroups != subgroups[0]).any())
        if use_subgroups:  # one rowwise call also measures each object to its nearest negative
            objects = torch.arange(len(embeddings), device=pairs.device)
            first = torch.cat([first, objects])
            second = torch.cat([second, self._nearest_other_subgroup(embeddings, subgroups)])
        distances = self.distance_metric.distance(embeddings[first], embeddings[second])
        pushes = F.relu(self.margin - distances).square()  # (P [+ 2P],) relu(m - d)^2
        labels = labels.to(distances.dtype)
        # y * d^2 + (1 - y) * relu(m - d)^2, summed over pairs
        total = 0.5 * torch.lerp(pushes[:num_pairs], distances[:num_pairs].square(), labels).sum()
        if use_subgroups:
            # each pair adds the terms of both its objects: weight objects by pair count
            pair_counts = torch.bincount(pairs.flatten(), minlength=len(embeddings))
            total = total + (pushes[num_pairs:] * pair_counts).sum()
        return total / num_pairs if self.size_average else total

    def _nearest_other_subgroup(self, embeddings: Tensor, subgroups: Tensor) -> Tensor:
        """Row of the closest object from another subgroup, per object: ``(2P,)``."""
        with torch.no_grad():
            matrix = self.distance_metric.distance_matrix(embeddings)  # (2P, 2P)
            same_subgroup = subgroups.unsqueeze(0) == subgroups.unsqueeze(1)
            return matrix.masked_fill_(same_subgroup, float("inf")).argmin(dim=1)
