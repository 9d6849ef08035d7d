"""Sampler of pair-labelled datasets."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from quaterion.dataset.similarity_data_loader import PairsSimilarityDataLoader
from quaterion.eval.accumulators import PairAccumulator
from quaterion.eval.base_metric import exclude_self_matches
from quaterion.eval.retrieval import RetrievalInputs, pair_inputs
from quaterion.eval.samplers.base_sampler import BaseSampler


class PairSampler(BaseSampler):
    """Encodes a dataset of ``SimilarityPairSample`` once per evaluation.

    Args:
        sample_size: number of queries (``-1``: all). Queries are objects, or pairs with
            ``distinguish``.
        distinguish: rank only ``obj_b`` objects, with each pair's ``obj_a`` as query; otherwise
            every object is ranked against every other one.
        encode_batch_size: objects encoded at once (``encode_batch_size // 2`` pairs).
        device: where embeddings are kept (default: the model's output device).
        log_progress: show a progress bar while encoding.
    """

    def __init__(
        self,
        sample_size: int = -1,
        distinguish: bool = False,
        encode_batch_size: int = 16,
        device: Any = None,
        log_progress: bool = True,
    ):
        super().__init__(sample_size, device, log_progress)
        self.distinguish = distinguish
        self.encode_batch_size = encode_batch_size
        self.accumulator = PairAccumulator()

    @property
    def samples_per_batch(self) -> int:
        return max(1, self.encode_batch_size // 2)

    def encode_batch(self, model: Any, batch: list) -> None:
        """Encode ``[obj_a..., obj_b...]`` of a chunk of pairs and keep it with the targets."""
        targets = PairsSimilarityDataLoader.collate_labels(batch)
        objects = [sample.obj_a for sample in batch] + [sample.obj_b for sample in batch]
        embeddings = model.encode(objects, batch_size=self.encode_batch_size, to_numpy=False)
        self.accumulator.update(embeddings, **targets, device=self.device)

    def sample(self, dataset: Any, metric: Any, model: Any) -> tuple[Tensor, Tensor]:
        """``(labels, distances)``: ``[Q, 2P]`` objects against all objects (own column ranked
        last), or with ``distinguish`` ``[Q, P]`` pairs' ``obj_a`` against every ``obj_b``."""
        state = self.state(dataset, model)
        embeddings, pairs = state["embeddings"], state["pairs"]
        labels = metric.prepare_labels(
            labels=state["labels"], pairs=pairs, subgroups=state["subgroups"]
        )
        if self.distinguish:
            queries = self.all_or_sampled(len(pairs), pairs.device)
            anchors = pairs[queries, 0]
            distance_matrix = metric.distance.distance_matrix(
                embeddings[anchors], embeddings[pairs[:, 1]]
            )
            return labels[anchors][:, pairs[:, 1]].float(), distance_matrix
        queries = self.all_or_sampled(len(embeddings), embeddings.device)
        distance_matrix = metric.distance.distance_matrix(embeddings[queries], embeddings)
        exclude_self_matches(distance_matrix, queries)
        return labels[queries].float(), distance_matrix

    def retrieval_inputs(self, dataset: Any, model: Any) -> RetrievalInputs:
        state = self.state(dataset, model)
        embeddings, pairs, scores = state["embeddings"], state["pairs"], state["labels"]
        if not self.distinguish:
            queries = self.query_indices(len(embeddings), pairs.device)
            return pair_inputs(embeddings, pairs, scores, query_indices=queries)
        # queries: the sampled pairs' obj_a; candidates: every pair's obj_b
        queries = self.all_or_sampled(len(pairs), pairs.device)
        return pair_inputs(
            embeddings[pairs[:, 1]],
            torch.stack([torch.arange(len(queries), device=pairs.device), queries], 1),
            scores[queries],
            query_embeddings=embeddings[pairs[queries, 0]],
        )
