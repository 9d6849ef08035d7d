"""Use a pytorch-metric-learning loss (and miner) as a quaterion GroupLoss."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import Tensor

from quaterion.loss.group_loss import GroupLoss

if TYPE_CHECKING:
    from pytorch_metric_learning.losses import BaseMetricLossFunction
    from pytorch_metric_learning.miners import BaseMiner


class PytorchMetricLearningWrapper(GroupLoss):
    """Adapter: ``forward(embeddings (B, D), groups (B,))`` calls
    ``loss(embeddings, groups, miner(embeddings, groups))`` (no miner: indices ``None``).

    ``xbm_loss`` passes the memory as pytorch-metric-learning's ``ref_emb`` / ``ref_labels``
    (works for the losses and miners that accept reference embeddings).

    Differs from the original: a missing pytorch-metric-learning raises ImportError naming the
    package to install (the original exited the interpreter).

    Args:
        loss: a ``pytorch_metric_learning.losses`` loss.
        miner: an optional ``pytorch_metric_learning.miners`` miner.
    """

    def __init__(self, loss: BaseMetricLossFunction, miner: BaseMiner | None = None):
        try:
            import pytorch_metric_learning  # noqa: F401
        except ImportError as error:
            raise ImportError(
                "PytorchMetricLearningWrapper needs pytorch-metric-learning: "
                "pip install pytorch-metric-learning (or pip install 'quaterion[test]')"
            ) from error
        super().__init__()
        self.loss = loss
        self.miner = miner

    def get_config_dict(self) -> dict[str, Any]:
        return {
            "loss": _class_path(self.loss),
            "miner": None if self.miner is None else _class_path(self.miner),
        }

    def forward(self, embeddings: Tensor, groups: Tensor) -> Tensor:
        """pytorch-metric-learning loss of a batch ``(B, D)`` with group ids ``(B,)``."""
        self.check_inputs(embeddings, groups)
        indices = None if self.miner is None else self.miner(embeddings, groups)
        return self.loss(embeddings, groups, indices)

    def xbm_loss(
        self,
        embeddings: Tensor,
        groups: Tensor,
        memory_embeddings: Tensor,
        memory_groups: Tensor,
    ) -> Tensor:
        """Loss of the batch against memory ``(M, D)``, ``(M,)`` as reference embeddings."""
        self.check_inputs(embeddings, groups)
        self.check_inputs(memory_embeddings, memory_groups)
        indices = (
            None
            if self.miner is None
            else self.miner(embeddings, groups, memory_embeddings, memory_groups)
        )
        return self.loss(embeddings, groups, indices, memory_embeddings, memory_groups)


def _class_path(obj: object) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"
