"""Full-cache batching: the given loader's batching and shuffle, user samplers, batch meta."""

import torch
from lightning_fabric.utilities.apply_func import move_data_to_device

from quaterion.dataset import GroupSimilarityDataLoader, SimilarityGroupSample
from quaterion.dataset.full_cache_loader import RowMeta, full_cache_loader


def test_batches_follow_the_given_loader_and_its_shuffle():
    # same sampler: the same seeded generator gives the same batches as the plain loader
    samples = [SimilarityGroupSample(obj=torch.ones(2) * i, group=i % 3) for i in range(10)]
    targets = GroupSimilarityDataLoader.collate_labels(samples)
    for kwargs in ({}, {"drop_last": True}, {"shuffle": True}):
        plain, given = (
            GroupSimilarityDataLoader(
                samples, batch_size=4, generator=torch.Generator().manual_seed(3), **kwargs
            )
            for _ in range(2)
        )
        cached = full_cache_loader(given, targets, {"default": torch.arange(10)}, meta=None)
        assert len(cached) == len(plain)
        for (features, cached_targets), (ids, _, plain_targets) in zip(cached, plain, strict=True):
            assert features["data"]["default"].tolist() == ids
            assert torch.equal(cached_targets["groups"], plain_targets["groups"])


def test_a_user_batch_sampler_is_walked_as_given():
    samples = [SimilarityGroupSample(obj=torch.ones(2) * i, group=i % 2) for i in range(6)]
    loader = GroupSimilarityDataLoader(samples, batch_sampler=[[5, 0], [2, 3, 1], [4]])
    targets = GroupSimilarityDataLoader.collate_labels(samples)
    row_maps = {"default": torch.arange(6) + 6}  # object id -> row
    cached = full_cache_loader(loader, targets, row_maps, meta=None)
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
