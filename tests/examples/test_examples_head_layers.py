"""examples/head_layers.py at its CI size."""

from examples_loader import load_example


def test_head_example_scores_every_head_on_the_same_held_out_set():
    example = load_example("head_layers")
    scores = example.main(small=True)
    assert list(scores) == list(example.HEADS)
    assert all(0.0 < value <= 1.0 for value in scores.values())
