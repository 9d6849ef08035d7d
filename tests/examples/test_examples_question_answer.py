"""examples/question_answer_pairs.py at its CI size."""

from examples_loader import load_example


def test_question_answer_example_ranks_true_answers_far_above_chance():
    results = load_example("question_answer_pairs").main(small=True)
    held_out = 60  # a quarter of the 240 pairs
    chance_mrr = sum(1 / rank for rank in range(1, held_out + 1)) / held_out  # ~0.08
    assert set(results) == {"frozen", "trained"}
    for metrics in results.values():
        assert set(metrics) == {"precision@1", "recall@5", "mrr"}
        assert all(0.0 <= value <= 1.0 for value in metrics.values())
        assert metrics["mrr"] > 2 * chance_mrr
        assert metrics["recall@5"] >= metrics["precision@1"]  # one relevant answer each
