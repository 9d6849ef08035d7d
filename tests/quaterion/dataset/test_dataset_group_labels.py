"""GroupLabels: any hashable group labels <-> integer ids, deterministic, names kept."""

import pytest

from quaterion.dataset import GroupLabels, SimilarityGroupSample


def test_labels_map_to_ids_in_sorted_order_whatever_the_sample_order():
    labels = GroupLabels(["shipping", "billing", "password", "billing"])
    assert labels.names == ("billing", "password", "shipping")
    assert labels.counts == (2, 1, 1)
    assert [labels.id_of(n) for n in ("billing", "password", "shipping")] == [0, 1, 2]
    assert GroupLabels(["password", "billing", "shipping"]).names == labels.names
    assert labels.summary(limit=2) == "billing (2), password (1), ... (1 more)"


def test_integer_labels_sort_by_value_and_far_apart_ids_become_dense():
    assert GroupLabels([2, 0, 1]).names == (0, 1, 2)  # 0..G-1 map to themselves
    sparse = GroupLabels([10**12, -5, 10**12, 7])
    assert sparse.names == (-5, 7, 10**12) and len(sparse) == 3
    assert sparse.id_of(10**12) == 2


def test_mixed_label_types_have_one_deterministic_order():
    labels = GroupLabels([("a", 1), "b", 3, "a", 1])
    assert labels.names == (1, 3, "a", "b", ("a", 1))


def test_to_ids_keeps_objects_and_an_unknown_label_is_named():
    labels = GroupLabels(["cat", "dog"])
    samples = [SimilarityGroupSample("x", "dog"), SimilarityGroupSample("y", "cat")]
    assert labels.to_ids(samples) == [SimilarityGroupSample("x", 1), SimilarityGroupSample("y", 0)]
    with pytest.raises(KeyError, match="'bird' is not one of the 2 known labels"):
        labels.id_of("bird")


def test_an_unhashable_label_is_refused_with_its_position():
    with pytest.raises(TypeError, match=r"sample 1 must be hashable.*list \['a'\]"):
        GroupLabels(["a", ["a"]])


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (["a", "a", "a"], r"has 1 group \('a'\); similarity needs at least 2 groups"),
        ([], "has 0 groups; similarity needs at least 2 groups"),
        (["a", "b", "c"], "3 groups of one sample each; a group loss needs groups with at least 2"),
    ],
)
def test_data_that_cannot_teach_similarity_is_refused(labels, message):
    with pytest.raises(ValueError, match=message):
        GroupLabels(labels).check_trainable("the data")
    GroupLabels(["a", "a", "b"]).check_trainable("the data")  # one pair is enough


def test_a_loader_over_a_list_maps_named_groups_to_sorted_ids():
    from quaterion.dataset import GroupSimilarityDataLoader

    samples = [SimilarityGroupSample(i, name) for i, name in enumerate(["b", "a", "c", "a"])]
    loader = GroupSimilarityDataLoader(samples, batch_size=4)
    assert loader.group_labels.names == ("a", "b", "c")
    _, _, targets = next(iter(loader))
    assert targets["groups"].tolist() == [1, 0, 2, 0]
    assert (
        GroupSimilarityDataLoader([SimilarityGroupSample(0, 3)], batch_size=1).group_labels is None
    )


def test_named_groups_train_a_class_loss_sized_by_the_mapping(head_model, clusters, fast_trainer):
    from quaterion import Quaterion
    from quaterion.dataset import GroupSimilarityDataLoader
    from quaterion.loss import SoftmaxLoss

    vectors, ids = clusters(n_classes=3, per_class=8)
    intents = ["shipping", "billing", "password"]
    samples = [SimilarityGroupSample(v, intents[int(i)]) for v, i in zip(vectors, ids, strict=True)]
    loader = GroupSimilarityDataLoader(samples, batch_size=8, shuffle=True)
    model = head_model(16, lambda: SoftmaxLoss(8, num_groups=len(loader.group_labels)))
    Quaterion.fit(model, fast_trainer(max_epochs=2), loader)
    assert model.loss.kernel.shape == (8, 3)
