"""Exact retrieval metrics over the whole validation set while training."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback

from quaterion.distances import Distance
from quaterion.eval.accumulators import Accumulator, GroupAccumulator, PairAccumulator
from quaterion.eval.retrieval import (
    RetrievalInputs,
    average,
    check_ks,
    group_inputs,
    metric_names,
    pair_inputs,
    score_queries,
)
from quaterion.utils.distributed import (
    all_reduce_sum,
    gather_pairs,
    gather_rows,
    rank_and_world,
    shard_offset,
)


class RetrievalMetricsCallback(Callback):
    """Every ``every_n_epochs`` epochs, ranks the whole validation set with the chunked engine
    (:mod:`quaterion.eval.retrieval`) and logs each metric as ``<metric>_validation``, e.g.
    ``r_precision_validation`` or ``precision@1_validation``: exact values, not batch-wise
    approximations, usable as the ``monitor`` of ``EarlyStopping`` and ``ModelCheckpoint``.

    It reads the embeddings ``validation_step`` already computed, so nothing is encoded twice;
    with the cache on they come from the cached encoder outputs. Group loaders rank every object
    against the others of the split (same group = relevant); pair loaders rank every object
    against every other one (the other object of its pair is relevant, gain = score).

    Under DDP each process keeps the embeddings of its shard of the validation set (samples the
    distributed sampler repeated to even out the shards are dropped), all processes gather the
    whole set, each ranks its own rows as queries, and the per-query sums are added up: every
    process ranks ``1 / world_size`` of the queries and all log the same values.

    Only the first validation loader is evaluated. On epochs it skips nothing is logged: with
    ``every_n_epochs > 1`` give ``EarlyStopping`` ``strict=False`` (or validate at the same
    cadence with ``Trainer(check_val_every_n_epoch=...)``).

    Args:
        k: cut-off(s) of precision@k, recall@k and ndcg@k.
        metrics: names of the metrics to log (default: all, see
            :func:`~quaterion.eval.retrieval.metric_names`).
        distance: distance used to rank (a :class:`Distance` or its name).
        every_n_epochs: evaluate after the validation of every n-th epoch.
        chunk_size: queries ranked at once (default: sized to the data).
    """

    def __init__(
        self,
        k: int | Sequence[int] = 1,
        metrics: Sequence[str] | None = None,
        distance: Distance | str = Distance.COSINE,
        every_n_epochs: int = 1,
        chunk_size: int | None = None,
    ):
        self.ks = check_ks(k)
        available = metric_names(self.ks)
        self.metrics = list(available if metrics is None else metrics)
        unknown = sorted(set(self.metrics) - set(available))
        if unknown:
            raise ValueError(f"unknown metrics {unknown} for k={k}; choose from {available}")
        Distance.get_by_name(distance)
        self.distance = str(Distance(distance))
        if isinstance(every_n_epochs, bool) or not isinstance(every_n_epochs, int):
            raise ValueError(f"every_n_epochs must be a positive int, got {every_n_epochs!r}")
        if every_n_epochs < 1:
            raise ValueError(f"every_n_epochs must be a positive int, got {every_n_epochs!r}")
        self.every_n_epochs = every_n_epochs
        self.chunk_size = chunk_size
        self._active = False
        self._accumulator: Accumulator | None = None
        self._samples = 0

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        due = (trainer.current_epoch + 1) % self.every_n_epochs == 0
        self._active = due and not trainer.sanity_checking
        self._accumulator = None
        self._samples = 0

    def on_validation_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if not self._active or dataloader_idx != 0:
            return
        if not isinstance(outputs, dict) or "embeddings" not in outputs:
            raise TypeError(
                "RetrievalMetricsCallback needs validation_step to return {'embeddings': ...}, "
                f"as TrainableModel's does; {type(pl_module).__name__}.validation_step returned "
                f"{type(outputs).__name__}"
            )
        embeddings, targets = outputs["embeddings"], batch[1]
        if "groups" in targets:
            if self._accumulator is None:
                self._accumulator = GroupAccumulator()
            self._accumulator.update(embeddings, targets["groups"])
            self._samples += len(targets["groups"])
        else:
            if self._accumulator is None:
                self._accumulator = PairAccumulator()
            self._accumulator.update(
                embeddings, targets["labels"], targets["pairs"], targets["subgroups"]
            )
            self._samples += len(targets["pairs"])

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        accumulator, self._accumulator = self._accumulator, None
        if not self._active or accumulator is None:
            return
        inputs = _gathered_inputs(accumulator, _real_samples(trainer, self._samples))
        scores = score_queries(inputs, self.ks, distance=self.distance, chunk_size=self.chunk_size)
        sums, count = scores.totals()
        zero = torch.zeros((), dtype=torch.float64, device=inputs.candidates.device)
        local = [sums.get(name, zero) for name in self.metrics] + [zero + count]
        totals = all_reduce_sum(torch.stack(local))  # [metrics + 1]: sums, then query count
        values = average(
            dict(zip(self.metrics, totals, strict=False)), int(totals[-1]), scores.dtype
        )
        for name, value in values.items():
            # the same on every process already; a max over them keeps it exact (and tells
            # Lightning the value is synchronised, which it warns about otherwise)
            pl_module.log(f"{name}_validation", value, sync_dist=True, reduce_fx="max")


def _real_samples(trainer: pl.Trainer, local_samples: int) -> int:
    """Samples of this process's shard that are not repeats: a distributed sampler pads the
    split to a multiple of the world size with the first samples, placed at the shards' ends
    (position p of rank r is sample ``p * world + r``)."""
    rank, world = rank_and_world()
    if world == 1:
        return local_samples
    total = _split_size(trainer)
    if total is None:
        return local_samples
    return min(local_samples, len(range(rank, total, world)))


def _split_size(trainer: pl.Trainer) -> int | None:
    """Samples in the validation split, when its loader says (None for iterable data)."""
    loaders = trainer.val_dataloaders
    loader = loaders[0] if isinstance(loaders, (list, tuple)) else loaders
    dataset = getattr(loader, "dataset", None)
    if dataset is not None:
        try:
            return len(dataset)
        except TypeError:
            return None
    return getattr(getattr(loader, "sampler", None), "num_samples", None)


def _gathered_inputs(accumulator: Accumulator, real: int) -> RetrievalInputs:
    """The whole split's embeddings as candidates, this process's rows as queries."""
    embeddings = accumulator.embeddings
    if isinstance(accumulator, GroupAccumulator):
        embeddings, groups = embeddings[:real], accumulator.groups[:real]
        offset = shard_offset(len(embeddings), embeddings.device)
        candidates, all_groups = gather_rows(embeddings, groups)
        queries = torch.arange(offset, offset + len(embeddings), device=embeddings.device)
        return group_inputs(candidates, all_groups, query_indices=queries)
    pairs, scores = accumulator.pairs[:real], accumulator.labels[:real]
    # keep the objects of the kept pairs (the others are repeats), renumbered
    kept = torch.zeros(len(embeddings), dtype=torch.bool, device=embeddings.device)
    kept[pairs.flatten()] = True
    pairs = (kept.cumsum(0) - 1)[pairs]
    embeddings = embeddings[kept]
    offset = shard_offset(len(embeddings), embeddings.device)
    all_pairs = gather_pairs(pairs, len(embeddings))
    candidates, all_scores = gather_rows(embeddings, scores)
    queries = torch.arange(offset, offset + len(embeddings), device=embeddings.device)
    return pair_inputs(candidates, all_pairs, all_scores, query_indices=queries)
