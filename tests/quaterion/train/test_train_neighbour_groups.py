"""Neighbouring-groups batches: nearest groups by the engine, refreshed each epoch from the
current model (cached or not), the same table on every DDP process."""

import json
import os
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.distributed as dist
from pytorch_lightning.callbacks import Callback
from support import fork_ranks

from quaterion import Quaterion
from quaterion.dataset import (
    GroupSimilarityDataLoader,
    MPerClassBatchSampler,
    NeighbourGroupsBatchSampler,
)
from quaterion.eval.neighbours import group_centroids, nearest_groups
from quaterion.loss import TripletLoss
from quaterion.train.cache import CacheConfig
from quaterion.train.callbacks import NeighbourGroupsCallback
from quaterion.train.callbacks.neighbour_groups_callback import train_embeddings

PER_GROUP = 8
TWIN = [1, 0, 3, 2, 5, 4]  # groups 2i and 2i+1 are near each other, far from the rest


def twin_groups(seed=0):
    """6 groups of 16-d vectors: pair i sits on axis i, its two groups 0.3 apart; pairs are
    orthogonal, so each group's nearest group is its twin."""
    generator = torch.Generator().manual_seed(seed)
    centres = torch.zeros(6, 16)
    for group in range(6):
        centres[group, group // 2] = 5.0
        centres[group, 8 + group // 2] = 0.3 * (1 if group % 2 else -1)
    labels = torch.arange(6).repeat_interleave(PER_GROUP)
    vectors = centres[labels] + 0.02 * torch.randn(len(labels), 16, generator=generator)
    return vectors, labels


def test_nearest_groups_are_those_of_the_closest_centroids():
    vectors, labels = twin_groups()
    table = nearest_groups(vectors, labels, 6, k=1)
    assert table[:, 0].tolist() == TWIN
    table = nearest_groups(vectors, labels, 6, k=5, distance="euclidean")
    assert table[:, 0].tolist() == TWIN
    assert all(sorted(row) == sorted(set(range(6)) - {g}) for g, row in enumerate(table.tolist()))
    centroids = group_centroids(vectors, labels, 6, "euclidean")
    assert torch.allclose(centroids[2], vectors[labels == 2].mean(0))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda v, g: nearest_groups(v, g, 6, k=6), r"k must be in \[1, 6\)"),
        (lambda v, g: nearest_groups(v, g, 6, k=0), r"k must be in \[1, 6\)"),
        (lambda v, g: nearest_groups(v, g, 7, k=1), "every group index in \\[0, 7\\) needs"),
        (lambda v, g: nearest_groups(v, g[:-1], 6, k=1), "embeddings must be \\[N, D\\]"),
    ],
)
def test_bad_arguments_of_nearest_groups_are_refused(call, message):
    vectors, labels = twin_groups()
    with pytest.raises(ValueError, match=message):
        call(vectors, labels)


class BatchGroups(Callback):
    """The groups of every training batch, and the sampler's table at each epoch start
    (recorded after the refresh: callbacks run in the order given)."""

    def __init__(self, sampler):
        self.sampler, self.groups, self.tables = sampler, [], []

    def on_train_epoch_start(self, trainer, pl_module):
        self.tables.append(self.sampler.neighbours.clone())

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.groups.append(Counter(batch[1]["groups"].tolist()))


@pytest.mark.parametrize("cached", [False, True], ids=["uncached", "full-cache"])
def test_each_epoch_batches_a_group_with_its_nearest_group(
    cached, to_group_samples, head_model, fast_trainer
):
    class Model(head_model):
        def configure_caches(self):
            return CacheConfig() if cached else None

    vectors, labels = twin_groups()
    samples = to_group_samples(vectors, labels)
    sampler = NeighbourGroupsBatchSampler(labels.tolist(), m=4, groups_per_batch=2, seed=0)
    loader = GroupSimilarityDataLoader(samples, batch_sampler=sampler)
    refresh = NeighbourGroupsCallback(sampler)
    recorder = BatchGroups(sampler)
    trainer = fast_trainer(max_epochs=3, callbacks=[refresh, recorder])
    torch.manual_seed(0)
    Quaterion.fit(Model(16, TripletLoss, lr=1e-3), trainer, loader)
    assert refresh.refreshes == 3  # once per epoch, before the epoch's batches are drawn
    assert [table[:, 0].tolist() for table in recorder.tables] == [TWIN] * 3
    assert len(recorder.groups) == 3 * len(sampler) == 18
    for counts in recorder.groups:  # every batch: 4 objects of a group and 4 of its twin
        first, second = sorted(counts)
        assert TWIN[first] == second and list(counts.values()) == [4, 4]


def test_the_table_follows_the_current_model(to_group_samples, head_model, fast_trainer):
    """Embeddings through the head as it is now: cached rows + head equal encoding the objects;
    a head that swaps the pairs' axes changes which groups are near."""

    class Model(head_model):
        def configure_caches(self):
            return CacheConfig()

    vectors, labels = twin_groups()
    samples = to_group_samples(vectors, labels)
    sampler = NeighbourGroupsBatchSampler(labels.tolist(), m=4, groups_per_batch=2, seed=0)
    loader = GroupSimilarityDataLoader(samples, batch_sampler=sampler)
    seen = []

    class Probe(Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            cached = train_embeddings(pl_module, trainer, batch_size=5)
            expected = pl_module.model.head(vectors)
            seen.append(torch.allclose(cached, expected, atol=1e-6))
            assert pl_module.model.training  # modes restored

    model = Model(16, TripletLoss, lr=1e-3)
    with torch.no_grad():  # head: keeps only the differences inside each pair (dims 8..10)
        model.model.head.layer.weight.zero_()
        model.model.head.layer.bias.zero_()
        for axis in range(3):
            model.model.head.layer.weight[axis, 8 + axis] = 1.0
    refresh = NeighbourGroupsCallback(sampler, distance="euclidean")
    trainer = fast_trainer(max_epochs=1, max_steps=1, callbacks=[Probe(), refresh])
    Quaterion.fit(model, trainer, loader)
    assert seen == [True]
    # through this head the twins are +-0.3 apart on one axis, while groups 0, 2, 4 all sit
    # at -0.3 on distinct axes: 0.42 apart, nearer than their twins
    assert sampler.neighbours[0, 0].item() != TWIN[0]


def test_the_callback_refuses_another_sampler_and_bad_settings():
    labels = [0, 0, 1, 1, 2, 2]
    with pytest.raises(TypeError, match="batch_sampler=NeighbourGroupsBatchSampler"):
        NeighbourGroupsCallback(MPerClassBatchSampler(labels, m=2, groups_per_batch=2))
    sampler = NeighbourGroupsBatchSampler(labels, m=2, groups_per_batch=2)
    with pytest.raises(ValueError, match="Unrecognized distance name: hamming"):
        NeighbourGroupsCallback(sampler, distance="hamming")
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        NeighbourGroupsCallback(sampler, batch_size=0)


def refresh_and_draw(rank: int, port: int, out_dir: str) -> None:
    """One process: refreshes its sampler from its own model (rank 1's head would pick other
    neighbours) and draws its shard of the epoch."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    vectors, labels = twin_groups()
    sampler = NeighbourGroupsBatchSampler(labels.tolist(), m=3, groups_per_batch=2, seed=9)
    head = torch.nn.Identity() if rank == 0 else (lambda x: x[:, 8:])  # rank 1: pairs' offsets
    model = SimpleNamespace(encoders={}, encode=lambda objects, **kw: head(torch.stack(objects)))
    samples = [SimpleNamespace(obj=vector) for vector in vectors]
    trainer = SimpleNamespace(train_dataloader=SimpleNamespace(original_dataset=samples))
    NeighbourGroupsCallback(sampler).on_train_epoch_start(trainer, SimpleNamespace(model=model))
    sampler.set_epoch(2)
    shard = list(sampler)
    dist.destroy_process_group()
    path = Path(out_dir) / f"rank{rank}.json"
    path.with_suffix(".tmp").write_text(json.dumps({"batches": shard}))
    path.with_suffix(".tmp").replace(path)


def test_ddp_processes_share_rank_zero_table_and_split_its_batches(tmp_path):
    assert fork_ranks(lambda rank, port: refresh_and_draw(rank, port, str(tmp_path))) == [0, 0]
    shards = [json.loads((tmp_path / f"rank{r}.json").read_text())["batches"] for r in (0, 1)]
    vectors, labels = twin_groups()
    single = NeighbourGroupsBatchSampler(labels.tolist(), m=3, groups_per_batch=2, seed=9)
    single.set_neighbours(nearest_groups(vectors, labels, 6, k=1))  # rank 0's model
    single.set_epoch(2)
    whole = list(single)
    assert len(whole) == 8 and [len(shard) for shard in shards] == [4, 4]
    assert [shards[i % 2][i // 2] for i in range(8)] == whole  # disjoint, and all of it
    for batch in whole:
        first, second = sorted({labels[index].item() for index in batch})
        assert TWIN[first] == second
