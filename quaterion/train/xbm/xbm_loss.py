"""The XBM term of the training loss: current batch against the memory of recent batches."""

from __future__ import annotations

from torch import Tensor

from quaterion.loss import GroupLoss, SimilarityLoss
from quaterion.train.xbm.xbm_buffer import XbmBuffer
from quaterion.train.xbm.xbm_config import XbmConfig
from quaterion.utils.distributed import gather_rows


class XbmLoss:
    """``weight * loss.xbm_loss(batch, memory)`` from step ``start_iteration`` on; feeds the memory.

    The loss must be a ``GroupLoss`` implementing ``xbm_loss`` (checked here; a fit builds this
    in ``Quaterion.validate_fit``, so a wrong choice fails before training). Under DDP the
    memory takes the batches of all processes.

    Args:
        config: the XBM settings.
        loss: the model's loss: a `GroupLoss` implementing `xbm_loss`.
        embedding_size: width of the embeddings.
    """

    def __init__(self, config: XbmConfig, loss: SimilarityLoss, embedding_size: int):
        if not isinstance(loss, GroupLoss):
            raise TypeError(
                f"XBM is supported only with GroupLoss instances, got {type(loss).__name__}; "
                "use e.g. TripletLoss, or return None from configure_xbm"
            )
        if type(loss).xbm_loss is GroupLoss.xbm_loss:
            raise TypeError(
                f"{type(loss).__name__} does not implement xbm_loss, so XBM cannot use it; "
                "use e.g. TripletLoss, or return None from configure_xbm"
            )
        self.config = config
        self.loss = loss
        self.buffer = XbmBuffer(config, embedding_size)

    def __call__(self, embeddings: Tensor, groups: Tensor, global_step: int) -> Tensor | float:
        """Memory term for this batch (0.0 before ``start_iteration``), then remember the batch."""
        if global_step < self.config.start_iteration:
            return 0.0
        memory_embeddings, memory_groups = self.buffer.get()
        memory_embeddings = memory_embeddings.to(embeddings.device)
        memory_groups = memory_groups.to(groups.device)
        term = self.loss.xbm_loss(embeddings, groups, memory_embeddings, memory_groups)
        self.buffer.queue(*gather_rows(embeddings, groups))
        return self.config.weight * term
