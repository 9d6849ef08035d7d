"""Accumulator of group-labelled embeddings."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from quaterion.eval.accumulators.accumulator import Accumulator


class GroupAccumulator(Accumulator):
    """Collects embeddings ``[B, D]`` with their group labels ``[B]``."""

    def __init__(self):
        super().__init__()
        self._groups: list[Tensor] = []

    def update(self, embeddings: Tensor, groups: Tensor, device: Any = None) -> None:
        """Add a batch; it is stored on ``device`` (default: the embeddings' device).

        Args:
            embeddings: ``[B, D]`` embeddings.
            groups: ``[B]`` group labels.
            device: where the batch is stored (default: the embeddings' device).
        """
        device = self._append_embeddings(embeddings, device)
        self._groups.append(groups.detach().to(device))

    @property
    def groups(self) -> Tensor:
        """All accumulated group labels ``[N]``."""
        return torch.cat(self._groups) if self._groups else torch.LongTensor()

    @property
    def state(self) -> dict[str, Any]:
        return {**super().state, "groups": self.groups}

    def reset(self) -> None:
        super().reset()
        self._groups = []
