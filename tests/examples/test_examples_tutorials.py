"""The tutorial scripts of the documentation (docs/tutorials/) at their CI size.

They share one cache directory: the three train on the same definitions with the same encoder,
so MiniLM encodes them once and the later tutorials reuse the stored embeddings.
"""

import pytest
from examples_loader import load_example

CHANCE = 0.2  # five balanced categories


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tutorial-cache"))


def test_text_groups_tutorial_trains_a_head_that_keeps_or_improves_retrieval(cache_dir):
    results = load_example("text_groups").main(small=True, cache_dir=cache_dir)
    assert set(results) == {"frozen", "trained"}
    frozen, trained = results["frozen"], results["trained"]
    assert trained["precision@1"] > 2 * CHANCE
    # the skip-connection head starts as the identity: training must not lose what MiniLM knew
    assert trained["r_precision"] >= frozen["r_precision"] - 0.02


def test_mining_tutorial_scores_every_strategy_on_the_same_held_out_set(cache_dir):
    results = load_example("hard_negative_mining").main(small=True, cache_dir=cache_dir)
    assert list(results) == ["frozen MiniLM", "mining=all", "mining=semi_hard", "mining=hard"]
    for values in results.values():
        assert CHANCE < values["r_precision"] <= 1.0
        assert values["mrr"] >= values["precision@1"]  # the first hit at rank 1 gives MRR 1


def test_confidence_tutorial_confident_answers_are_more_often_right(cache_dir):
    results = load_example("embedding_confidence").main(small=True, cache_dir=cache_dir)
    assert results["accuracy"] > 2 * CHANCE
    assert results["accuracy_confident"] >= results["accuracy_unsure"]
    assert 0.5 <= results["share_confident"] <= 1.0  # at least the half at or above the median
