"""Full-cache batching: epochs, distributed shards, user samplers and batch meta."""

import pytest
import torch
from lightning_fabric.utilities.apply_func import move_data_to_device

from quaterion.dataset import GroupSimilarityDataLoader, SimilarityGroupSample, full_cache_loader
from quaterion.dataset.full_cache_loader import EpochBatches, FullCacheLoader, RowMeta


def epoch(batches, rank, world, monkeypatch):
    monkeypatch.setattr(full_cache_loader, "rank_and_world", lambda: (rank, world))
    return [indices.tolist() for indices in batches], len(batches)


@pytest.mark.parametrize("drop_last", [False, True])
def test_ranks_get_disjoint_equal_shards_of_one_permutation(monkeypatch, drop_last):
    # 10 samples, 3 ranks, batch 3: padded to 12 = 3 ranks x 4 samples, as DistributedSampler
    batches = EpochBatches(10, batch_size=3, shuffle=True, drop_last=drop_last)
    batches.set_epoch(4)
    shards = [epoch(batches, rank, 3, monkeypatch) for rank in range(3)]
    for shard, length in shards:
        assert len(shard) == length == (1 if drop_last else 2)
    seen = [i for shard, _ in shards for batch in shard for i in batch]
    if not drop_last:
        assert sorted(set(seen)) == list(range(10)) and len(seen) == 12
    generator = torch.Generator().manual_seed(4)  # PL_GLOBAL_SEED (unset: 0) + epoch
    order = torch.randperm(10, generator=generator).tolist()
    padded = order + order[:2]
    assert shards[1][0][0] == padded[1::3][:3]
    batches.set_epoch(5)
    assert epoch(batches, 1, 3, monkeypatch)[0] != shards[1][0]


def test_a_user_batch_sampler_is_walked_as_given(monkeypatch):
    sampler = [[3, 1], [0], [2, 4], [5, 6]]
    batches = EpochBatches(7, batch_size=2, shuffle=False, drop_last=False, batch_sampler=sampler)
    assert epoch(batches, 0, 1, monkeypatch) == (sampler, 4)
    assert epoch(batches, 1, 2, monkeypatch) == ([[0], [5, 6]], 2)


def test_loader_uses_the_user_sampler_through_setup_cache():
    samples = [SimilarityGroupSample(obj=torch.ones(2) * i, group=i % 2) for i in range(6)]
    loader = GroupSimilarityDataLoader(samples, batch_sampler=[[5, 0], [2, 3, 1], [4]])
    targets = GroupSimilarityDataLoader.collate_labels(samples)
    cached = FullCacheLoader(
        GroupSimilarityDataLoader,
        targets,
        row_maps={"default": torch.arange(6) + 6},  # object id -> row
        meta=None,
        batches=EpochBatches(6, 1, False, False, batch_sampler=loader.batch_sampler),
    )
    rows = [features["data"]["default"].tolist() for features, _ in cached]
    assert rows == [[11, 6], [8, 9, 7], [10]]  # rows of the sample ids


def test_row_meta_reads_like_a_list_but_is_not_walked_by_batch_transfer():
    stored = [{"encoder": "a"}, {"encoder": "b"}, {"encoder": "c"}]
    meta = RowMeta(torch.tensor([2, 0]), stored)
    assert len(meta) == 2 and meta[0] == {"encoder": "c"} and list(meta) == [stored[2], stored[0]]
    meta[0]["encoder"] = "changed"
    assert stored[2] == {"encoder": "c"}  # readers get copies
    empty = RowMeta(torch.arange(128), None)
    assert list(empty) == [{}] * 128
    assert move_data_to_device({"meta": empty}, torch.device("cpu"))["meta"] is empty
