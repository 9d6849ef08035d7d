"""CosFace: large margin cosine loss."""

from __future__ import annotations

from torch import Tensor

from quaterion.loss.margin_softmax import MarginSoftmaxLoss


class CosFaceLoss(MarginSoftmaxLoss):
    """CosFace / LMCL (Wang et al., 2018): the margin is subtracted from the target cosine::

        cos_t = normalize(E) @ normalize(W)                      # (B, C)
        logit[i, c] = scale * (cos_t[i, c] - margin * [c == groups[i]])
        loss = CE(logit, groups)

    Shapes: embeddings ``(B, D)``, groups ``(B,)`` ids in ``[0, num_groups)``; ``kernel`` ``(D, C)``
    is a learnable parameter of the loss (include it in the optimizer).

    Differs from the original: it is the real LMCL (the original applied ``cos`` to
    ``cos_t - margin``), ``get_config_dict`` returns the constructor arguments and group ids out
    of range raise ValueError.

    Args:
        embedding_size: ``D``.
        num_groups: number of classes ``C``.
        margin: cosine margin ``m``.
        scale: logit scale ``s``.
    """

    def __init__(
        self, embedding_size: int, num_groups: int, margin: float = 0.35, scale: float = 64.0
    ):
        super().__init__(embedding_size, num_groups, scale=scale, margin=margin)

    def target_logit(self, target_cosine: Tensor) -> Tensor:
        return target_cosine - self.margin
