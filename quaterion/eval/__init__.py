"""Evaluation: exact chunked retrieval metrics, the original metric classes, `Evaluator`."""
