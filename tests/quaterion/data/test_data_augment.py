"""Random crops and flips of image tensors (quaterion.data.augment)."""

import pytest
import torch

from quaterion.data import AugmentedGroups, random_crop_flip
from quaterion.dataset import GroupSimilarityDataLoader, SimilarityGroupSample


def images(count: int = 6) -> list[SimilarityGroupSample]:
    generator = torch.Generator().manual_seed(0)
    return [
        SimilarityGroupSample(obj=torch.rand(1, 12, 10, generator=generator), group=index % 3)
        for index in range(count)
    ]


def test_crop_keeps_shape_and_shifts_the_image_inside_zero_padding():
    image = torch.arange(1.0, 1.0 + 2 * 5 * 7).reshape(2, 5, 7)
    for seed in range(20):
        view = random_crop_flip(image, padding=2, flip_probability=0.0,
                                generator=torch.Generator().manual_seed(seed))  # fmt: skip
        assert view.shape == image.shape and view.dtype == image.dtype
        # a shifted copy: every non-zero pixel keeps its value, the rest is padding
        kept = view[view != 0]
        assert set(kept.tolist()) <= set(image.flatten().tolist())
        assert len(kept) >= 2 * (5 - 2) * (7 - 2)


def test_flip_mirrors_left_right_and_padding_zero_is_the_identity():
    image = torch.rand(3, 4, 6)
    assert torch.equal(random_crop_flip(image, padding=0, flip_probability=1.0), image.flip(-1))
    unchanged = random_crop_flip(image, padding=0, flip_probability=0.0)
    assert torch.equal(unchanged, image) and unchanged.data_ptr() != image.data_ptr()


def test_reads_are_reproducible_under_a_seed_and_differ_between_reads():
    def views(seed: int) -> list[torch.Tensor]:
        dataset = AugmentedGroups(images(), generator=torch.Generator().manual_seed(seed))
        return [dataset[index].obj for index in (0, 0, 1, 0)]

    first, again, other = views(1), views(1), views(2)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first, other, strict=True))
    # the same object read three times: not three equal views
    assert not (torch.equal(first[0], first[1]) and torch.equal(first[1], first[3]))


def test_global_generator_is_reproducible_under_manual_seed():
    dataset = AugmentedGroups(images())
    torch.manual_seed(5)
    first = [dataset[index].obj for index in range(len(dataset))]
    torch.manual_seed(5)
    again = [dataset[index].obj for index in range(len(dataset))]
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))


def test_augmented_images_change_but_groups_do_not():
    samples = images(40)
    dataset = AugmentedGroups(samples, padding=3, generator=torch.Generator().manual_seed(0))
    changed = 0
    for index, sample in enumerate(samples):
        view = dataset[index]
        assert view.group == sample.group and view.obj.shape == sample.obj.shape
        changed += not torch.equal(view.obj, sample.obj)
    # unchanged only when the offset is (3, 3) and there is no flip: 1/49 * 1/2 of the reads
    assert changed >= 38


def test_loader_batches_augmented_images():
    dataset = AugmentedGroups(images(8), generator=torch.Generator().manual_seed(0))
    loader = GroupSimilarityDataLoader(dataset, batch_size=4)
    _ids, features, targets = loader.pre_collate_fn([(i, dataset[i]) for i in range(4)])
    assert len(features) == 4 and all(obj.shape == (1, 12, 10) for obj in features)
    assert targets["groups"].tolist() == [0, 1, 2, 0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"padding": -1}, "padding must be 0 or more"),
        ({"flip_probability": 1.5}, r"flip_probability must be in \[0, 1\]"),
    ],
)
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AugmentedGroups(images(), **kwargs)


def test_non_image_objects_are_refused_naming_the_sample():
    samples = images(2) + [SimilarityGroupSample(obj="a text", group=0)]
    with pytest.raises(ValueError, match="sample 2 has str"):
        AugmentedGroups(samples)
    with pytest.raises(ValueError, match=r"one image \[C, H, W\]"):
        random_crop_flip(torch.rand(2, 1, 4, 4))
