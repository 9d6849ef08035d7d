"""Sampler of group-labelled datasets."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from quaterion.dataset.group_labels import FirstSeenIds
from quaterion.dataset.similarity_data_loader import GroupSimilarityDataLoader
from quaterion.eval.accumulators import GroupAccumulator
from quaterion.eval.base_metric import exclude_self_matches
from quaterion.eval.retrieval import RetrievalInputs, group_inputs
from quaterion.eval.samplers.base_sampler import BaseSampler


class GroupSampler(BaseSampler):
    """Encodes a dataset of ``SimilarityGroupSample`` once per evaluation.

    Args:
        sample_size: number of objects used as queries (``-1``: all); every object stays a
            candidate.
        encode_batch_size: objects encoded at once.
        device: where embeddings are kept (default: the model's output device).
        log_progress: show a progress bar while encoding.
    """

    def __init__(
        self,
        sample_size: int = -1,
        encode_batch_size: int = 16,
        device: Any = None,
        log_progress: bool = True,
    ):
        super().__init__(sample_size, device, log_progress)
        self.encode_batch_size = encode_batch_size
        self.accumulator = GroupAccumulator()
        self._group_ids = FirstSeenIds()

    def reset(self) -> None:
        super().reset()
        self._group_ids = FirstSeenIds()

    @property
    def samples_per_batch(self) -> int:
        return self.encode_batch_size

    def encode_batch(self, model: Any, batch: list) -> None:
        """Encode every sample's ``obj`` with ``model.encode`` and keep it with its group (any
        hashable label: ids are given in the order labels are first seen)."""
        objects, _ = GroupSimilarityDataLoader.flatten_objects(batch, list(range(len(batch))))
        groups = torch.tensor(self._group_ids(sample.group for sample in batch), dtype=torch.long)
        embeddings = model.encode(objects, batch_size=self.encode_batch_size, to_numpy=False)
        self.accumulator.update(embeddings, groups, device=self.device)

    def sample(self, dataset: Any, metric: Any, model: Any) -> tuple[Tensor, Tensor]:
        """``(labels [Q, N], distances [Q, N])``; each query's own column is ranked last."""
        state = self.state(dataset, model)
        embeddings, groups = state["embeddings"], state["groups"]
        queries = self.all_or_sampled(len(embeddings), embeddings.device)
        labels = metric.prepare_labels(groups=groups)[queries]
        distance_matrix = metric.distance.distance_matrix(embeddings[queries], embeddings)
        exclude_self_matches(distance_matrix, queries)
        return labels.float(), distance_matrix

    def retrieval_inputs(self, dataset: Any, model: Any) -> RetrievalInputs:
        state = self.state(dataset, model)
        embeddings = state["embeddings"]
        queries = self.query_indices(len(embeddings), embeddings.device)
        return group_inputs(embeddings, state["groups"], query_indices=queries)
