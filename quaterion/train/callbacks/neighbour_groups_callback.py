"""Refreshes a NeighbourGroupsBatchSampler's nearest groups at the start of every epoch."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback
from torch import Tensor, nn

from quaterion.dataset.neighbour_groups_sampler import NeighbourGroupsBatchSampler
from quaterion.distances import Distance
from quaterion.eval.neighbours import nearest_groups
from quaterion.train.cache import CacheEncoder, InMemoryCacheEncoder
from quaterion.utils.distributed import broadcast_from_zero


class NeighbourGroupsCallback(Callback):
    """At the start of each training epoch, embeds the training set with the current model,
    takes each group's centroid, finds each group's nearest groups with the retrieval engine
    (:func:`~quaterion.eval.neighbours.nearest_groups`) and gives them to ``sampler``, so that
    the epoch's batches put each group beside the groups the model now confuses it with.

    With the cache on, the embeddings come from the cached encoder outputs of the training split
    (through the trainable top of a partly trainable encoder) and the head: nothing is encoded
    again. Without it, the training loader's objects are encoded with ``SimilarityModel.encode``.
    Under DDP every process computes the table and rank 0's is used by all, so every process
    draws the same batch sequence and keeps its own shard.

    Args:
        sampler: the training loader's batch sampler.
        distance: the distance by which groups are near (a ``Distance`` or its name).
        batch_size: objects embedded at once.
    """

    def __init__(
        self,
        sampler: NeighbourGroupsBatchSampler,
        distance: Distance | str = Distance.COSINE,
        batch_size: int = 256,
    ):
        if not isinstance(sampler, NeighbourGroupsBatchSampler):
            raise TypeError(
                "NeighbourGroupsCallback refreshes a NeighbourGroupsBatchSampler, got "
                f"{type(sampler).__name__}: build the loader with "
                "batch_sampler=NeighbourGroupsBatchSampler(...)"
            )
        Distance.get_by_name(distance)
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.sampler = sampler
        self.distance = str(Distance(distance))
        self.batch_size = batch_size
        self.refreshes = 0

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        embeddings = train_embeddings(pl_module, trainer, self.batch_size)
        if len(embeddings) != len(self.sampler.group_index()):
            raise ValueError(
                f"the training split has {len(embeddings)} objects but the sampler was built "
                f"for {len(self.sampler.group_index())}: build it from the training samples"
            )
        table = nearest_groups(
            embeddings,
            self.sampler.group_index(),
            self.sampler.num_groups,
            self.sampler.nearest,
            self.distance,
        )
        self.sampler.set_neighbours(broadcast_from_zero(table).cpu())
        self.refreshes += 1


def train_embeddings(pl_module: Any, trainer: pl.Trainer, batch_size: int) -> Tensor:
    """``[N, D]`` embeddings of the training split through the current model, in object-id
    order, in eval mode and without gradients (each module's mode is restored afterwards).

    Args:
        pl_module: the ``TrainableModel`` being trained.
        trainer: its trainer (for the training loader's objects when nothing is cached).
        batch_size: objects embedded at once.
    """
    model = pl_module.model
    encoders = model.encoders
    cached = [isinstance(encoder, CacheEncoder) for encoder in encoders.values()]
    if any(cached):
        if not all(isinstance(e, InMemoryCacheEncoder) for e in encoders.values()):
            raise ValueError(
                "NeighbourGroupsCallback reads cached embeddings: cache every encoder of the "
                "model (or none of them)"
            )
        with _eval_mode(model), torch.no_grad():
            parts = [encoders[key].embeddings("train") for key in sorted(encoders)]
            joined = torch.cat(parts, dim=1)
            return torch.cat(
                [model.head(chunk) for chunk in joined.split(batch_size)]
            )  # fmt: skip
    loader = trainer.train_dataloader
    dataset = getattr(loader, "original_dataset", None)
    if dataset is None:
        raise ValueError(
            "NeighbourGroupsCallback needs a SimilarityDataLoader over the training samples"
        )
    objects = [dataset[index].obj for index in range(len(dataset))]
    return model.encode(objects, batch_size=batch_size, to_numpy=False)


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training
