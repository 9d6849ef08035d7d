"""examples/cross_batch_memory.py at its CI size."""

from examples_loader import load_example


def test_xbm_example_trains_and_retrieves_same_category_definitions():
    scores = load_example("cross_batch_memory").main(small=True)
    assert set(scores) == {"precision@5", "r_precision", "map@r"}
    # 5 categories: a random ranking gives precision ~0.2
    assert scores["precision@5"] > 0.3
    assert 0.0 < scores["map@r"] <= scores["r_precision"] + 1e-6  # MAP@R <= R-precision
