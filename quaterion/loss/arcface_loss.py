"""ArcFace: additive angular margin loss."""

from __future__ import annotations

import torch
from torch import Tensor

from quaterion.loss.margin_softmax import MarginSoftmaxLoss


class ArcFaceLoss(MarginSoftmaxLoss):
    """ArcFace (Deng et al., 2019): the margin is added to the target angle::

        cos_t = normalize(E) @ normalize(W)        # (B, C)
        logit[i, c] = scale * cos(theta[i, c] + margin * [c == groups[i]]),  theta = acos(cos_t)
        loss = CE(logit, groups)

    Shapes: embeddings ``(B, D)``, groups ``(B,)`` ids in ``[0, num_groups)``; ``kernel`` ``(D, C)``
    is a learnable parameter of the loss (include it in the optimizer). Only the target column
    goes through ``acos``; cosines are clamped to ``1 - eps`` in magnitude so its gradient stays
    finite.

    Differs from the original: ``get_config_dict`` returns the constructor arguments and group ids
    out of range raise ValueError.

    Args:
        embedding_size: ``D``.
        num_groups: number of classes ``C``.
        scale: logit scale ``s``.
        margin: additive angular margin in radians.
    """

    def __init__(
        self, embedding_size: int, num_groups: int, scale: float = 64.0, margin: float = 0.5
    ):
        super().__init__(embedding_size, num_groups, scale=scale, margin=margin)

    def target_logit(self, target_cosine: Tensor) -> Tensor:
        bound = 1 - torch.finfo(target_cosine.dtype).eps
        return torch.cos(torch.acos(target_cosine.clamp(-bound, bound)) + self.margin)
