"""Base of the accumulators: batches of embeddings (and their targets) collected for evaluation."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


class Accumulator:
    """Collects detached batches of embeddings; subclasses add the targets of their data kind."""

    def __init__(self):
        self._embeddings: list[Tensor] = []
        self._filled = False

    @property
    def filled(self) -> bool:
        """True once the whole dataset has been accumulated (see ``set_filled``)."""
        return self._filled

    def set_filled(self) -> None:
        """Mark the accumulated data as complete."""
        self._filled = True

    @property
    def embeddings(self) -> Tensor:
        """All accumulated embeddings ``[N, D]`` (an empty tensor before any update)."""
        return torch.cat(self._embeddings) if self._embeddings else torch.Tensor()

    @property
    def state(self) -> dict[str, Any]:
        """Keyword arguments of the owning metric's ``compute``."""
        return {"embeddings": self.embeddings}

    def update(self, **kwargs: Any) -> None:
        """Add one batch.

        Args:
            **kwargs: the batch's embeddings and targets, as the subclass names them.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement update")

    def reset(self) -> None:
        """Drop everything accumulated."""
        self._embeddings = []
        self._filled = False

    def _append_embeddings(self, embeddings: Tensor, device: Any) -> Any:
        """Store a detached copy on ``device`` (default: the embeddings' own); return the device."""
        device = embeddings.device if device is None else device
        self._embeddings.append(embeddings.detach().to(device))
        return device
