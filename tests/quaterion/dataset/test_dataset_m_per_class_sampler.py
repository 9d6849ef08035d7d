"""MPerClassBatchSampler: batch composition, determinism, DDP sharding, use in a fit."""

from collections import Counter

import pytest
from pytorch_lightning.callbacks import Callback

from quaterion import Quaterion
from quaterion.dataset import GroupSimilarityDataLoader, MPerClassBatchSampler
from quaterion.dataset import m_per_class_sampler as sampler_module
from quaterion.loss import TripletLoss
from quaterion.train.cache import CacheConfig

# 5 groups of unequal sizes (string labels, as in real data): 12, 9, 6, 4 and 3 objects
LABELS = ["cat"] * 12 + ["dog"] * 9 + ["owl"] * 6 + ["emu"] * 4 + ["yak"] * 3


def batches(sampler, epoch=0):
    sampler.set_epoch(epoch)
    return list(sampler)


def test_each_batch_holds_m_distinct_objects_of_each_of_its_distinct_groups():
    sampler = MPerClassBatchSampler(LABELS, m=3, groups_per_batch=2, seed=1)
    drawn = batches(sampler)
    assert len(drawn) == len(sampler) == len(LABELS) // 6
    for batch in drawn:
        assert len(batch) == len(set(batch)) == 6  # every group has >= m objects: no repeats
        assert sorted(Counter(LABELS[index] for index in batch).values()) == [3, 3]


def test_a_group_uses_every_object_before_one_repeats():
    sampler = MPerClassBatchSampler(LABELS, m=2, groups_per_batch=5, seed=0)
    sampler.set_epoch(3)
    drawn = list(sampler)  # 3 batches, each with every group
    owls = [index for batch in drawn for index in batch if LABELS[index] == "owl"]
    assert sorted(owls) == list(range(21, 27))  # 3 batches x 2 of the 6 owls: each once
    cats = [index for batch in drawn for index in batch if LABELS[index] == "cat"]
    assert len(set(cats)) == 6  # 6 of the 12 cats, none twice


def test_a_group_smaller_than_m_repeats_its_objects():
    sampler = MPerClassBatchSampler(LABELS, m=4, groups_per_batch=5, seed=0)
    for batch in batches(sampler):
        yaks = [index for index in batch if LABELS[index] == "yak"]
        assert len(yaks) == 4 and set(yaks) == {31, 32, 33}


def test_batches_depend_on_seed_and_epoch_only():
    def make(seed):
        return MPerClassBatchSampler(LABELS, m=2, groups_per_batch=3, seed=seed)

    assert batches(make(7), epoch=2) == batches(make(7), epoch=2)
    sampler = make(7)
    assert batches(sampler, epoch=0) == batches(sampler, epoch=0)  # iterating twice: same
    assert batches(sampler, epoch=0) != batches(sampler, epoch=1)
    assert batches(make(7)) != batches(make(8))


@pytest.mark.parametrize("world", [2, 3])
def test_processes_get_disjoint_shards_of_one_sequence(world):
    def shard(rank, num_replicas):
        sampler = MPerClassBatchSampler(
            LABELS, m=2, groups_per_batch=2, seed=5, num_replicas=num_replicas, rank=rank
        )
        return batches(sampler, epoch=1)

    shards = [shard(rank, world) for rank in range(world)]
    total = len(LABELS) // 4  # 9 batches per epoch in all, rounded up to a multiple of world
    assert [len(each) for each in shards] == [-(-total // world)] * world
    # batch i of the common sequence goes to rank i % world
    interleaved = [shards[i % world][i // world] for i in range(world * len(shards[0]))]
    one_process = MPerClassBatchSampler(
        LABELS, m=2, groups_per_batch=2, seed=5, num_replicas=1, rank=0
    )
    one_process._num_samples = len(interleaved) * 4  # as many batches as the shards together
    assert interleaved == batches(one_process, epoch=1)


def test_rank_and_world_come_from_torch_distributed_when_not_given(monkeypatch):
    explicit = [
        batches(MPerClassBatchSampler(LABELS, 2, 2, seed=5, num_replicas=2, rank=rank))
        for rank in (0, 1)
    ]
    for rank in (0, 1):
        monkeypatch.setattr(sampler_module, "rank_and_world", lambda rank=rank: (rank, 2))
        assert batches(MPerClassBatchSampler(LABELS, 2, 2, seed=5)) == explicit[rank]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"m": 0, "groups_per_batch": 2}, "m >= 1 objects per group, got 0"),
        ({"m": 2, "groups_per_batch": 1}, "groups_per_batch >= 2 so that a batch has negatives"),
        ({"m": 2, "groups_per_batch": 6}, "groups_per_batch=6 is more than the 5 groups"),
        (
            {"m": 2, "groups_per_batch": 2, "num_replicas": 2, "rank": 2},
            r"rank must be in \[0, 2\)",
        ),
    ],
)
def test_bad_settings_are_refused_with_the_fix(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MPerClassBatchSampler(LABELS, **kwargs)


class GroupCounts(Callback):
    """Per training batch: how many objects of each group it holds; and each epoch's sampler."""

    def __init__(self, sampler):
        self.sampler, self.counts, self.epochs = sampler, [], []

    def on_train_epoch_start(self, trainer, pl_module):
        self.epochs.append(self.sampler.epoch)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        _, targets = batch
        self.counts.append(sorted(Counter(targets["groups"].tolist()).values()))


@pytest.mark.parametrize("cached", [False, True], ids=["uncached", "full-cache"])
def test_group_loader_trains_on_m_per_class_batches_reshuffled_each_epoch(
    cached, clusters, to_group_samples, head_model, fast_trainer
):
    class Model(head_model):
        def configure_caches(self):
            return CacheConfig() if cached else None

    vectors, labels = clusters(n_classes=4, per_class=12)
    samples = to_group_samples(vectors, labels)
    sampler = MPerClassBatchSampler([s.group for s in samples], m=4, groups_per_batch=3, seed=0)
    loader = GroupSimilarityDataLoader(samples, batch_sampler=sampler)
    recorder = GroupCounts(sampler)
    trainer = fast_trainer(max_epochs=2, callbacks=[recorder])
    Quaterion.fit(Model(vectors.shape[1], TripletLoss), trainer, loader)
    assert trainer.global_step == 2 * len(sampler) == 8
    assert recorder.counts == [[4, 4, 4]] * 8
    assert recorder.epochs == [0, 1]  # Lightning moved the sampler to the next epoch
