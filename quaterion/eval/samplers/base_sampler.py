"""Base of the samplers: encode a dataset once and hand metrics what they rank."""

from __future__ import annotations

import random
from typing import Any

import torch
from torch import Tensor

from quaterion.eval.accumulators import Accumulator
from quaterion.eval.retrieval import RetrievalInputs
from quaterion.utils.utils import iter_by_batch


class BaseSampler:
    """Encodes a dataset with a model once per evaluation and serves it to metrics: to the
    retrieval engine (``retrieval_inputs``, what the ``Evaluator`` uses) or as dense matrices
    (``sample``, the original's API).

    The encoded state lives in ``accumulator``, filled on first use and dropped by ``reset``;
    a subclass says how a batch of samples is encoded (``encode_batch``) and what is ranked.

    Args:
        sample_size: number of queries, drawn with Python's ``random`` (``-1`` or more than
            the dataset holds: all of them). Every object stays a candidate.
        device: where embeddings are kept (default: the model's output device).
        log_progress: show a progress bar while encoding.
    """

    # the encoded dataset; subclasses set their kind of accumulator
    accumulator: Accumulator | None = None

    def __init__(self, sample_size: int = -1, device: Any = None, log_progress: bool = True):
        self.sample_size = sample_size
        self.device = device
        self.log_progress = log_progress

    def sample(self, dataset: Any, metric: Any, model: Any) -> tuple[Tensor, Tensor]:
        """``(labels [Q, N], distance_matrix [Q, N])`` of the sampled queries, for
        ``metric.raw_compute``.

        Args:
            dataset: the samples to encode.
            metric: the metric the matrices are for.
            model: the model that encodes them.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement sample")

    def retrieval_inputs(self, dataset: Any, model: Any) -> RetrievalInputs:
        """What the engine ranks: the encoded dataset and the sampled queries.

        Args:
            dataset: the samples to encode.
            model: the model that encodes them.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement retrieval_inputs")

    def reset(self) -> None:
        """Forget the encoded dataset."""
        if self.accumulator is not None:
            self.accumulator.reset()

    # ---- what subclasses build on ----

    @property
    def samples_per_batch(self) -> int:
        """Samples handed to ``encode_batch`` at once."""
        raise NotImplementedError(f"{type(self).__name__} does not implement samples_per_batch")

    def encode_batch(self, model: Any, batch: list) -> None:
        """Encode a batch of samples and add it, with its targets, to ``accumulator``.

        Args:
            model: the model that encodes them.
            batch: a list of samples.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement encode_batch")

    def accumulate(self, model: Any, dataset: Any) -> None:
        """Encode the whole dataset, batch by batch, into ``accumulator``.

        Args:
            model: the model that encodes them.
            dataset: the samples to encode.
        """
        read = 0
        for batch in iter_by_batch(dataset, self.samples_per_batch, self.log_progress):
            read += len(batch)
            self.encode_batch(model, batch)
        if read == 0:  # no metric is defined on an empty dataset: say so instead of failing later
            raise ValueError("cannot evaluate an empty dataset; pass at least 2 samples")
        self.accumulator.set_filled()

    def state(self, dataset: Any, model: Any) -> dict[str, Tensor]:
        """The accumulator's state, encoding the dataset first if that has not happened yet.

        Args:
            dataset: the samples to encode.
            model: the model that encodes them.
        """
        if not self.accumulator.filled:
            self.accumulate(model, dataset)
        return self.accumulator.state

    def query_indices(self, size: int, device: Any) -> Tensor | None:
        """Sampled query rows out of ``size``, or None when every row is a query.

        Args:
            size: number of rows.
            device: device of the result.
        """
        if self.sample_size <= 0 or self.sample_size >= size:
            return None
        return torch.tensor(random.sample(range(size), self.sample_size), device=device)

    def all_or_sampled(self, size: int, device: Any) -> Tensor:
        """Sampled query rows out of ``size``, or all of them in order.

        Args:
            size: number of rows.
            device: device of the result.
        """
        queries = self.query_indices(size, device)
        return torch.arange(size, device=device) if queries is None else queries
