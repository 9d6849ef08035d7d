"""Accumulator of pair-labelled embeddings."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from quaterion.eval.accumulators.accumulator import Accumulator


class PairAccumulator(Accumulator):
    """Collects embeddings ``[B, D]`` with ``pairs`` ``[P, 2]`` (row indices into the batch),
    their ``labels`` (scores) ``[P]`` and ``subgroups`` ``[B]``.

    Pair indices are shifted by the number of embeddings accumulated before the batch, so they
    index the accumulated ``embeddings``.
    """

    def __init__(self):
        super().__init__()
        self._labels: list[Tensor] = []
        self._pairs: list[Tensor] = []
        self._subgroups: list[Tensor] = []
        self._accumulated = 0

    def update(
        self,
        embeddings: Tensor,
        labels: Tensor,
        pairs: Tensor,
        subgroups: Tensor,
        device: Any = None,
    ) -> None:
        """Add a batch; it is stored on ``device`` (default: the embeddings' device).

        Args:
            embeddings: ``[B, D]`` embeddings.
            labels: ``[P]`` score of each pair.
            pairs: ``[P, 2]`` row indices into the batch.
            subgroups: ``[B]`` subgroup of each embedding.
            device: where the batch is stored (default: the embeddings' device).
        """
        device = self._append_embeddings(embeddings, device)
        self._labels.append(labels.detach().to(device))
        self._pairs.append(pairs.detach().to(device) + self._accumulated)
        self._subgroups.append(torch.as_tensor(subgroups).detach().to(device))
        self._accumulated += len(embeddings)

    @property
    def labels(self) -> Tensor:
        """Scores of all accumulated pairs ``[P]``."""
        return torch.cat(self._labels) if self._labels else torch.Tensor()

    @property
    def pairs(self) -> Tensor:
        """All accumulated pairs ``[P, 2]``, indexing ``embeddings``."""
        return torch.cat(self._pairs) if self._pairs else torch.LongTensor()

    @property
    def subgroups(self) -> Tensor:
        """Subgroup of every accumulated embedding ``[N]``."""
        return torch.cat(self._subgroups) if self._subgroups else torch.Tensor()

    @property
    def state(self) -> dict[str, Any]:
        return {
            **super().state,
            "labels": self.labels,
            "pairs": self.pairs,
            "subgroups": self.subgroups,
        }

    def reset(self) -> None:
        super().reset()
        self._labels = []
        self._pairs = []
        self._subgroups = []
        self._accumulated = 0
