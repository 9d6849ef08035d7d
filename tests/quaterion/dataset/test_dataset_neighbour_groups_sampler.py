"""NeighbourGroupsBatchSampler: batches of a group and its nearest groups, determinism, DDP
sharding, refused neighbour tables."""

from collections import Counter

import pytest
import torch

from quaterion.dataset import MPerClassBatchSampler, NeighbourGroupsBatchSampler

# 6 groups of unequal sizes: a0 .. c1 (10, 8, 7, 6, 5, 4 objects)
SIZES = {"a0": 10, "a1": 8, "b0": 7, "b1": 6, "c0": 5, "c1": 4}
LABELS = [label for label, size in SIZES.items() for _ in range(size)]
# group indices follow first appearance: a0=0, a1=1, b0=2, b1=3, c0=4, c1=5
PAIRS = torch.tensor([[1, 2], [0, 3], [3, 0], [2, 1], [5, 0], [4, 1]])  # nearest, next


def batches(sampler, epoch=0):
    sampler.set_epoch(epoch)
    return list(sampler)


def neighbour_sampler(**kwargs):
    options = {"m": 2, "groups_per_batch": 2, "seed": 3, **kwargs}
    sampler = NeighbourGroupsBatchSampler(LABELS, **options)
    sampler.set_neighbours(PAIRS)
    return sampler


def test_each_batch_holds_m_objects_of_a_group_and_of_its_nearest_groups():
    sampler = neighbour_sampler(m=2, groups_per_batch=3)
    drawn = batches(sampler)
    assert len(drawn) == len(sampler) == len(LABELS) // 6
    anchors = []
    for batch in drawn:
        counts = Counter(LABELS[index] for index in batch)
        assert sorted(counts.values()) == [2, 2, 2] and len(set(batch)) == 6
        groups = {sampler.group_labels.index(label) for label in counts}
        anchor = [g for g in groups if groups == {g, *PAIRS[g].tolist()}]
        assert anchor, f"batch of groups {groups} is not a group and its two nearest"
        anchors.append(anchor[0])
    # anchors follow a permutation of the groups: 6 batches, every group once
    assert sorted(anchors) == list(range(6))


def test_neighbours_are_read_in_the_sampler_group_order():
    sampler = neighbour_sampler()
    assert sampler.group_labels == list(SIZES)
    assert sampler.group_index().tolist() == [
        index for index, size in enumerate(SIZES.values()) for _ in range(size)
    ]
    assert torch.equal(sampler.neighbours, PAIRS[:, :1])


def test_without_neighbours_batches_are_those_of_the_m_per_class_sampler():
    plain = MPerClassBatchSampler(LABELS, m=2, groups_per_batch=3, seed=4)
    waiting = NeighbourGroupsBatchSampler(LABELS, m=2, groups_per_batch=3, seed=4)
    assert waiting.neighbours is None
    assert batches(waiting, epoch=1) == batches(plain, epoch=1)


def test_batches_depend_on_seed_epoch_and_neighbours_only():
    assert batches(neighbour_sampler(), 2) == batches(neighbour_sampler(), 2)
    sampler = neighbour_sampler()
    assert batches(sampler, 0) == batches(sampler, 0)  # iterating twice: the same
    assert batches(sampler, 0) != batches(sampler, 1)
    assert batches(neighbour_sampler(seed=3)) != batches(neighbour_sampler(seed=4))
    other = neighbour_sampler()
    other.set_neighbours(PAIRS[:, 1:])
    assert batches(other) != batches(sampler)


def test_new_neighbours_apply_from_the_next_iteration():
    sampler = neighbour_sampler()
    iterator = iter(sampler)
    first = next(iterator)
    sampler.set_neighbours(PAIRS[:, 1:])  # mid-epoch: this epoch keeps its table
    rest = list(iterator)
    assert [first, *rest] == batches(neighbour_sampler())


@pytest.mark.parametrize("world", [2, 3])
def test_processes_get_disjoint_shards_that_together_are_the_whole_sequence(world):
    shards = [
        batches(neighbour_sampler(num_replicas=world, rank=rank), epoch=1) for rank in range(world)
    ]
    total = len(LABELS) // 4  # 10 batches, rounded up to a multiple of world
    per_rank = -(-total // world)
    assert [len(shard) for shard in shards] == [per_rank] * world
    # batch i of the one sequence goes to rank i % world only: a partition of the sequence
    interleaved = [shards[i % world][i // world] for i in range(world * per_rank)]
    single = neighbour_sampler(num_replicas=1, rank=0)
    single._num_samples = len(interleaved) * 4  # as many batches as all shards together
    assert interleaved == batches(single, epoch=1)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (torch.tensor([1, 0, 3, 2, 5, 4]), r"integer tensor \[groups=6, k>=1\]"),
        (PAIRS[:4], r"integer tensor \[groups=6, k>=1\]"),
        (PAIRS.float(), r"integer tensor \[groups=6, k>=1\]"),
        (torch.arange(6)[:, None] * 0 + 6, r"group indices in \[0, 6\)"),
        (torch.arange(6)[:, None] * 0 - 1, r"group indices in \[0, 6\)"),
        (torch.arange(6)[:, None], "distinct groups other than its own"),
    ],
    ids=["1-d", "too-few-rows", "float", "too-large", "negative", "itself"],
)
def test_bad_neighbour_tables_are_refused(table, message):
    sampler = NeighbourGroupsBatchSampler(LABELS, m=2, groups_per_batch=2)
    with pytest.raises(ValueError, match=message):
        sampler.set_neighbours(table)
    assert sampler.neighbours is None


def test_too_few_or_repeated_neighbours_are_refused():
    sampler = NeighbourGroupsBatchSampler(LABELS, m=2, groups_per_batch=3)
    with pytest.raises(ValueError, match="puts 2 nearest groups in each batch; find more"):
        sampler.set_neighbours(PAIRS[:, :1])
    with pytest.raises(ValueError, match="distinct groups other than its own"):
        sampler.set_neighbours(torch.cat([PAIRS[:, :1], PAIRS[:, :1]], dim=1))


def test_nearest_groups_and_random_others_share_a_batch():
    sampler = neighbour_sampler(m=2, groups_per_batch=4, nearest=1)
    assert torch.equal(sampler.neighbours, PAIRS[:, :1])
    drawn = batches(sampler) + batches(sampler, epoch=1)
    others = Counter()
    for batch in drawn:
        groups = [sampler.group_labels.index(LABELS[index]) for index in batch[::2]]
        assert len(set(groups)) == 4 and Counter(LABELS[i] for i in batch).most_common(1)[0][1] == 2
        anchor, nearest, *rest = groups  # objects come group by group, m of each
        assert nearest == PAIRS[anchor, 0]
        others.update(rest)
    assert len(others) >= 5  # the random places go to many groups, not a fixed few


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"m": 2, "groups_per_batch": 3, "nearest": 0}, "nearest must be between 1 and"),
        ({"m": 2, "groups_per_batch": 3, "nearest": 3}, "groups_per_batch - 1 = 2"),
        ({"m": 0, "groups_per_batch": 2}, "m >= 1 objects per group"),
        ({"m": 2, "groups_per_batch": 1}, "groups_per_batch >= 2"),
        ({"m": 2, "groups_per_batch": 7}, "groups_per_batch=7 is more than the 6 groups"),
    ],
)
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        NeighbourGroupsBatchSampler(LABELS, **kwargs)
