"""Similarity loaders: object ids, targets, full-cache indexing, workers, DDP re-instantiation."""

import pytest
import torch
from pytorch_lightning.utilities.data import _update_dataloader
from torch.utils.data import DistributedSampler, IterableDataset, get_worker_info

from quaterion.dataset import (
    GroupSimilarityDataLoader,
    PairsSimilarityDataLoader,
    SimilarityGroupDataset,
    SimilarityGroupSample,
    SimilarityPairSample,
)
from quaterion.dataset.indexing_dataset import IndexingDataset
from quaterion.dataset.train_collator import TrainCollator


def pair_samples(n):
    return [
        SimilarityPairSample(obj_a=f"a{i}", obj_b=f"b{i}", score=float(i % 2), subgroup=i % 3)
        for i in range(n)
    ]


def group_samples(n):
    return [SimilarityGroupSample(obj=f"o{i}", group=i % 4) for i in range(n)]


def test_pairs_pre_collate_matches_documented_layout():
    samples = [
        SimilarityPairSample("x", "y", score=1.0, subgroup=0),
        SimilarityPairSample("z", "w", score=0.0, subgroup=1),
    ]
    batch = [(5, samples[0]), (7, samples[1])]
    ids, features, targets = PairsSimilarityDataLoader.pre_collate_fn(batch)
    assert features == ["x", "z", "y", "w"]
    assert ids == [10, 14, 11, 15]  # obj_a of sample i -> 2i, obj_b -> 2i + 1
    assert targets["pairs"].tolist() == [[0, 2], [1, 3]]
    assert targets["labels"].tolist() == [1.0, 0.0]
    assert targets["subgroups"].tolist() == [0.0, 1.0, 0.0, 1.0]


def test_group_loader_yields_sample_indices_as_ids():
    loader = GroupSimilarityDataLoader(group_samples(10), batch_size=4)
    batches = list(loader)
    assert [ids for ids, _, _ in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert batches[0][1] == ["o0", "o1", "o2", "o3"]
    assert batches[2][2]["groups"].tolist() == [0, 1]
    assert batches[2][2]["groups"].dtype == torch.long


@pytest.mark.parametrize(
    "loader_cls, make_samples",
    [(PairsSimilarityDataLoader, pair_samples), (GroupSimilarityDataLoader, group_samples)],
)
def test_index_targets_equals_collate_of_subset(loader_cls, make_samples):
    samples = make_samples(13)
    full_targets = loader_cls.collate_labels(samples)
    idx = torch.randperm(13, generator=torch.Generator().manual_seed(0))[:5]
    rows, targets = loader_cls.index_targets(full_targets, idx)
    subset = [(i, samples[i]) for i in idx.tolist()]
    expected_ids, _, expected_targets = loader_cls.pre_collate_fn(subset)
    assert rows.tolist() == expected_ids
    assert targets.keys() == expected_targets.keys()
    for key, value in expected_targets.items():
        assert targets[key].dtype == value.dtype
        assert torch.equal(targets[key], value), key


def test_wrong_sample_type_names_the_expected_type():
    with pytest.raises(TypeError, match="expects SimilarityGroupSample.*got SimilarityPairSample"):
        next(iter(GroupSimilarityDataLoader(pair_samples(3), batch_size=2)))
    with pytest.raises(TypeError, match="expects SimilarityPairSample.*got SimilarityGroupSample"):
        next(iter(PairsSimilarityDataLoader(group_samples(3), batch_size=2)))
    with pytest.raises(TypeError, match="SimilarityGroupDataset"):
        next(iter(GroupSimilarityDataLoader([("record", 1)], batch_size=1)))


@pytest.mark.parametrize("bad_group", [1.5, "cat", 2.0, None])
def test_non_integer_group_labels_are_rejected(bad_group):
    samples = [SimilarityGroupSample("a", 0), SimilarityGroupSample("b", bad_group)]
    with pytest.raises(TypeError, match="integer group ids"):
        GroupSimilarityDataLoader.collate_labels(samples)


def test_numpy_and_tensor_integer_groups_are_accepted():
    import numpy as np

    samples = [SimilarityGroupSample("a", np.int32(3)), SimilarityGroupSample("b", torch.tensor(4))]
    assert GroupSimilarityDataLoader.collate_labels(samples)["groups"].tolist() == [3, 4]


def test_empty_dataset_is_rejected():
    with pytest.raises(ValueError, match="empty dataset"):
        PairsSimilarityDataLoader([], batch_size=2)


def test_similarity_group_dataset_wraps_record_label_pairs():
    dataset = SimilarityGroupDataset([("r0", 3), ("r1", 5)])
    assert len(dataset) == 2
    assert dataset[1] == SimilarityGroupSample(obj="r1", group=5)
    ids, features, targets = next(iter(GroupSimilarityDataLoader(dataset, batch_size=2)))
    assert features == ["r0", "r1"] and targets["groups"].tolist() == [3, 5]


class ShardedStream(IterableDataset):
    """Group samples 0..n-1, split between loader workers."""

    def __init__(self, n):
        self.n = n

    def __iter__(self):
        info = get_worker_info()
        start, step = (0, 1) if info is None else (info.id, info.num_workers)
        for i in range(start, self.n, step):
            yield SimilarityGroupSample(obj=i, group=i % 3)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_iterable_dataset_gets_unique_ids(num_workers):
    loader = GroupSimilarityDataLoader(ShardedStream(10), batch_size=3, num_workers=num_workers)
    seen = {}
    for ids, features, targets in loader:
        assert targets["groups"].tolist() == [f % 3 for f in features]
        seen.update(zip(ids, features, strict=True))
    assert sorted(seen.values()) == list(range(10))  # every sample once, ids never collide
    if num_workers == 0:
        assert seen == {i: i for i in range(10)}


def test_map_dataset_with_workers_and_train_collator():
    loader = PairsSimilarityDataLoader(pair_samples(6), batch_size=4, num_workers=2)
    loader.collate_fn = TrainCollator(
        pre_collate_fn=loader.collate_fn,
        encoder_collates={"default": len},
        meta_extractors={"default": lambda objects: [{"first": o[0]} for o in objects]},
    )
    batches = list(loader)
    features, targets = batches[0]
    assert features["data"] == {"default": 8}
    assert [m["first"] for m in features["meta"]] == ["a"] * 4 + ["b"] * 4
    assert targets["pairs"].shape == (4, 2)
    assert batches[1][1]["labels"].tolist() == [0.0, 1.0]


def test_lightning_sampler_injection_does_not_wrap_twice():
    samples = group_samples(10)
    loader = GroupSimilarityDataLoader(samples, batch_size=2, collate_fn=None)
    sentinel_collate = loader.collate_fn
    sampler = DistributedSampler(loader.dataset, num_replicas=2, rank=1, shuffle=False)
    rebuilt = _update_dataloader(loader, sampler)
    assert type(rebuilt) is GroupSimilarityDataLoader
    assert isinstance(rebuilt.dataset, IndexingDataset)
    assert rebuilt.original_dataset is samples
    assert rebuilt.collate_fn is sentinel_collate
    ids = [i for batch_ids, _, _ in rebuilt for i in batch_ids]
    assert ids == [1, 3, 5, 7, 9]  # rank 1 of 2 sees every other sample, ids intact


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("score", "yes", r"a number as each score .*got str 'yes' as `score` of batch item 1"),
        ("score", None, r"a number as each score .*got NoneType None as `score` of batch item 1"),
        ("score", [1.0, 0.0], r"a number as each score .*got list .* batch item 1"),
        ("subgroup", 1.5, r"an integer as each subgroup .*got float 1.5 as `subgroup` of batch"),
        ("subgroup", "b", r"an integer as each subgroup .*got str 'b'"),
    ],
)
def test_non_numeric_pair_labels_name_the_sample_and_field(field, value, message):
    good = SimilarityPairSample("a", "b", score=1.0, subgroup=0)
    bad = SimilarityPairSample("c", "d", **{"score": 0.0, "subgroup": 1, field: value})
    with pytest.raises(TypeError, match=message):
        PairsSimilarityDataLoader.collate_labels([good, bad])


def test_numpy_bool_and_tensor_pair_labels_are_accepted():
    import numpy as np

    samples = [
        SimilarityPairSample("a", "b", score=True, subgroup=np.int64(2)),
        SimilarityPairSample("c", "d", score=np.float32(0.5), subgroup=torch.tensor(1)),
    ]
    targets = PairsSimilarityDataLoader.collate_labels(samples)
    assert targets["labels"].tolist() == [1.0, 0.5]
    assert targets["subgroups"].tolist() == [2.0, 1.0, 2.0, 1.0]
    assert targets["labels"].dtype == targets["subgroups"].dtype == torch.float32
