"""Base of the samplers: encode a dataset once and hand metrics what they rank."""

from __future__ import annotations

import random
from typing import Any

import torch
from torch import Tensor


class BaseSampler:
    """Encodes a dataset with a model and serves it to metrics, either as dense matrices
    (``sample``) or as embeddings and targets (``retrieval_inputs``).

    Args:
        sample_size: number of objects used as queries, drawn with Python's ``random``
            (``-1`` or more than the dataset holds: all of them).
        device: where embeddings are kept (default: the model's output device).
        log_progress: show a progress bar while encoding.
    """

    def __init__(self, sample_size: int = -1, device: Any = None, log_progress: bool = True):
        self.sample_size = sample_size
        self.device = device
        self.log_progress = log_progress

    def sample(self, dataset: Any, metric: Any, model: Any) -> tuple[Tensor, Tensor]:
        """``(labels [Q, N], distance_matrix [Q, N])`` of the sampled queries, for
        ``metric.raw_compute``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement sample")

    def retrieval_inputs(self, dataset: Any, model: Any) -> dict[str, Any]:
        """Keyword arguments of a ranking metric's ``compute``: embeddings, targets and the
        sampled queries."""
        raise NotImplementedError(f"{type(self).__name__} does not implement retrieval_inputs")

    def reset(self) -> None:
        """Forget the encoded dataset."""

    def _query_indices(self, size: int, device: Any) -> Tensor | None:
        """Sampled query rows out of ``size``, or None when every row is a query."""
        if self.sample_size <= 0 or self.sample_size >= size:
            return None
        return torch.tensor(random.sample(range(size), self.sample_size), device=device)

    @staticmethod
    def _check_not_empty(samples_read: int) -> None:
        """No metric is defined on an empty dataset: say so instead of failing later."""
        if samples_read == 0:
            raise ValueError("cannot evaluate an empty dataset; pass at least 2 samples")

    def _all_or_sampled(self, size: int, device: Any) -> Tensor:
        """Sampled query rows out of ``size``, or all of them in order."""
        queries = self._query_indices(size, device)
        return torch.arange(size, device=device) if queries is None else queries
