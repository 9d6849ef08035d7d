"""FastAP: listwise loss optimising a histogram approximation of average precision."""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor

from quaterion.distances import Distance
from quaterion.loss.group_loss import GroupLoss
from quaterion.loss.similarity_loss import zero_loss
from quaterion.utils import get_anchor_negative_mask, get_anchor_positive_mask


class FastAPLoss(GroupLoss):
    """FastAP (Cakir et al., 2019) with squared Euclidean distances of L2-normalised embeddings.

    ``Q[i, j] = |e_i - e_j|^2`` in ``[0, 4]`` (``e = normalize(E)``) is soft-binned into
    ``L + 1`` bins with centres ``z_l = l * 4 / L`` by the triangular kernel
    ``relu(1 - |Q - z_l| / (4 / L))``. Per anchor ``i``, with positives ``j != i`` of its group::

        h+[i, l], h-[i, l]   kernel mass of positives / negatives in bin l
        H+ = cumsum_l h+,  H = cumsum_l (h+ + h-)
        AP_i = sum_l h+ * H+ / H  /  (number of positives of i)     (0/0 terms are 0)
        loss = 1 - mean_i AP_i      over anchors with at least one positive (0 if none)

    The distance is always Euclidean. Shapes: embeddings ``(B, D)``, groups ``(B,)``. Each
    distance falls into two neighbouring bins, so the histograms are built in ``O(B^2)``.

    Differs from the original: ``get_config_dict`` is JSON-friendly and a batch without positives
    gives 0 instead of NaN.

    Args:
        num_bins: number of histogram intervals ``L``.
    """

    def __init__(self, num_bins: int = 10):
        super().__init__(distance_metric_name=Distance.EUCLIDEAN)
        if int(num_bins) < 1:
            raise ValueError(f"FastAPLoss needs num_bins >= 1, got {num_bins}")
        self.num_bins = int(num_bins)

    def get_config_dict(self) -> dict[str, Any]:
        return {"num_bins": self.num_bins}

    def forward(self, embeddings: Tensor, groups: Tensor) -> Tensor:
        """Loss of a batch ``(B, D)`` with group ids ``(B,)``."""
        self.check_inputs(embeddings, groups)
        positive = get_anchor_positive_mask(groups)  # (B, B)
        negative = get_anchor_negative_mask(groups)  # (B, B)
        num_positives = positive.sum(dim=1)  # (B,)
        has_positive = num_positives > 0
        if not bool(has_positive.any()):
            return zero_loss(embeddings)

        normalized = F.normalize(embeddings, dim=1)
        squared = (2 - 2 * normalized @ normalized.T).clamp(0, 4)  # (B, B) = |e_i - e_j|^2
        position = squared * (self.num_bins / 4)  # (B, B) in bin units, [0, L]
        lower = position.detach().floor().long().clamp(max=self.num_bins - 1)  # (B, B)
        upper_weight = position - lower  # kernel weight of bin lower + 1; 1 - it goes to lower
        # one histogram row of 2 (L + 1) bins per anchor: positives first, negatives second
        bins = lower + (self.num_bins + 1) * negative
        relevant = (positive | negative).to(squared.dtype)
        histogram = squared.new_zeros(len(squared), 2 * (self.num_bins + 1))
        histogram = histogram.scatter_add(1, bins, (1 - upper_weight) * relevant)
        histogram = histogram.scatter_add(1, bins + 1, upper_weight * relevant)
        h_pos, h_neg = histogram.split(self.num_bins + 1, dim=1)  # (B, L + 1) each

        cum_pos = h_pos.cumsum(dim=1)
        cum_all = (h_pos + h_neg).cumsum(dim=1)
        precision_terms = h_pos * cum_pos / cum_all.masked_fill(cum_all <= 0, 1.0)
        average_precision = precision_terms.sum(dim=1)[has_positive] / num_positives[has_positive]
        return 1 - average_precision.mean()
