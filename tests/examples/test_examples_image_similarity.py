"""examples/image_similarity.py at its CI size."""

import pytest
from examples_loader import load_example


def test_image_example_retrieves_same_class_images_above_chance():
    pytest.importorskip("efficientnet_lite_pytorch")
    scores = load_example("image_similarity").main(small=True)
    assert set(scores) == {"r_precision_frozen", "r_precision_trained"}
    # 10 balanced classes: a random ranking gives R-precision ~0.1
    assert scores["r_precision_frozen"] > 0.2
    assert scores["r_precision_trained"] > 0.2


def test_image_example_on_two_cached_augmented_views():
    pytest.importorskip("efficientnet_lite_pytorch")
    scores = load_example("image_similarity").main(small=True, views=2)
    assert scores["r_precision_trained"] > 0.2
