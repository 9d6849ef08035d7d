"""FIFO ring buffer of recent embeddings and their groups, the memory of XBM."""

from __future__ import annotations

import torch
from torch import Tensor

from quaterion.train.xbm.xbm_config import XbmConfig, XbmDevice


class XbmBuffer:
    """Keeps the ``buffer_size`` most recent embeddings [M, D] and groups [M] (first in, first out).

    Storage is allocated on the first ``queue``: on ``config.device``, or for ``XbmDevice.AUTO``
    on the device of the first embeddings queued.

    Args:
        config: buffer size and device.
        embedding_size: width of the embeddings.
    """

    def __init__(self, config: XbmConfig, embedding_size: int):
        if config.buffer_size < 1:
            raise ValueError(f"XbmConfig.buffer_size must be >= 1, got {config.buffer_size}")
        device = XbmDevice(config.device)
        if device is XbmDevice.CUDA and not torch.cuda.is_available():
            raise ValueError(
                "XbmConfig.device is XbmDevice.CUDA, but CUDA is not available; use "
                "XbmDevice.AUTO or XbmDevice.CPU"
            )
        self._device = None if device is XbmDevice.AUTO else torch.device(device.value)
        self._size = config.buffer_size
        self._embedding_size = embedding_size
        self._embeddings: Tensor | None = None  # [buffer_size, D]
        self._groups: Tensor | None = None  # [buffer_size]
        self._pointer = 0  # next row to write = oldest row once full
        self._filled = 0

    @property
    def is_full(self) -> bool:
        """Whether `buffer_size` rows have been queued (from then on the oldest are evicted)."""
        return self._filled == self._size

    def __len__(self) -> int:
        return self._filled

    def queue(self, embeddings: Tensor, groups: Tensor) -> None:
        """Append embeddings [B, D] and groups [B], evicting the oldest rows when full.

        Args:
            embeddings: `[B, D]` embeddings.
            groups: `[B]` their group ids.
        """
        if self._embeddings is None:
            device = self._device or embeddings.device
            self._embeddings = torch.zeros(
                self._size, self._embedding_size, dtype=embeddings.dtype, device=device
            )
            self._groups = torch.zeros(self._size, dtype=torch.long, device=device)
        embeddings = embeddings.detach().to(self._embeddings.device)
        groups = groups.detach().to(self._groups.device)
        if embeddings.shape[0] >= self._size:  # only the newest rows fit
            self._embeddings.copy_(embeddings[-self._size :])
            self._groups.copy_(groups[-self._size :])
            self._pointer, self._filled = 0, self._size
            return
        count = embeddings.shape[0]
        head = min(count, self._size - self._pointer)  # rows written before wrapping around
        self._embeddings[self._pointer : self._pointer + head] = embeddings[:head]
        self._groups[self._pointer : self._pointer + head] = groups[:head]
        self._embeddings[: count - head] = embeddings[head:]
        self._groups[: count - head] = groups[head:]
        self._pointer = (self._pointer + count) % self._size
        self._filled = min(self._filled + count, self._size)

    def get(self) -> tuple[Tensor, Tensor]:
        """Copies of the stored embeddings [M, D] and groups [M], oldest first."""
        if self._embeddings is None:
            return torch.empty(0, self._embedding_size), torch.empty(0, dtype=torch.long)
        if not self.is_full:
            return self._embeddings[: self._filled].clone(), self._groups[: self._filled].clone()
        order = torch.arange(self._size, device=self._embeddings.device)
        order = (order + self._pointer) % self._size
        return self._embeddings[order], self._groups[order]
