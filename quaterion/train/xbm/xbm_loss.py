"""The XBM term of the training loss: current batch against the memory of recent batches."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor

from quaterion.loss import GroupLoss, SimilarityLoss
from quaterion.train.xbm.xbm_buffer import XbmBuffer
from quaterion.train.xbm.xbm_config import XbmConfig


def gather_from_all_processes(*tensors: Tensor) -> tuple[Tensor, ...]:
    """Rows of ``tensors`` from every process, concatenated in rank order (no gradient).

    Outside distributed training returns ``tensors`` as they are. Processes may hold different
    numbers of rows; all tensors of one call share their row count.

    Args:
        *tensors: tensors with the same number of rows.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tensors
    world_size = dist.get_world_size()
    rows = torch.tensor([tensors[0].shape[0]], device=tensors[0].device)
    all_rows = [torch.zeros_like(rows) for _ in range(world_size)]
    dist.all_gather(all_rows, rows)
    counts = [int(count) for count in all_rows]
    gathered = []
    for tensor in tensors:
        padded = tensor.new_zeros((max(counts), *tensor.shape[1:]))
        padded[: tensor.shape[0]] = tensor.detach()
        parts = [torch.empty_like(padded) for _ in range(world_size)]
        dist.all_gather(parts, padded)
        rows_of = zip(parts, counts, strict=True)
        gathered.append(torch.cat([part[:count] for part, count in rows_of]))
    return tuple(gathered)


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
        self.buffer.queue(*gather_from_all_processes(embeddings.detach(), groups))
        return self.config.weight * term
