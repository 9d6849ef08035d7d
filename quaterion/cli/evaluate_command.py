"""`quaterion evaluate SERVABLE DATA`: retrieval metrics of a saved model on labelled data."""

from __future__ import annotations

import argparse
import json


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `quaterion evaluate`."""
    parser.add_argument("servable", help="directory written by `quaterion fit` / save_servable")
    parser.add_argument(
        "data",
        help="a fit config (.yaml/.toml/.json: its held-out split) or a CSV/TSV/JSONL file of "
        "groups (obj, group) or pairs (obj_a, obj_b, score)",
    )
    parser.add_argument(
        "-k", type=int, nargs="+", default=[1, 10], help="cut-offs of precision@k (default 1 10)"
    )
    parser.add_argument("--batch-size", type=int, default=64, help="encoding batch size")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")


def evaluate_samples(model: object, kind: str, samples: list, ks: list[int]) -> dict[str, float]:
    """Encode `samples` with `model` and rank them: groups query each other, pairs' obj_a
    queries the obj_b column."""
    import torch

    from quaterion.eval.retrieval import pair_retrieval_metrics, retrieval_metrics

    def encode(objects: list) -> torch.Tensor:
        return model.encode(objects, batch_size=64, to_numpy=False, show_progress=True)

    if kind == "groups":
        groups = torch.tensor([sample.group for sample in samples])
        ks = [k for k in ks if k < len(samples)] or [1]
        metrics = retrieval_metrics(encode([s.obj for s in samples]), groups, k=ks)
    else:
        candidates = encode([sample.obj_b for sample in samples])
        queries = encode([sample.obj_a for sample in samples])
        pairs = torch.arange(len(samples)).repeat(2, 1).T  # query i <-> candidate i
        scores = torch.tensor([float(sample.score) for sample in samples])
        ks = [k for k in ks if k <= len(samples)] or [1]
        metrics = pair_retrieval_metrics(candidates, pairs, scores, k=ks, query_embeddings=queries)
    return {name: float(value) for name, value in metrics.items()}


def run_evaluate(args: argparse.Namespace) -> int:
    """Print the metrics table (or JSON) of the servable on the data."""
    from quaterion.cli.data_sources import load_evaluation_samples
    from quaterion_models import SimilarityModel

    if any(k < 1 for k in args.k):
        raise ValueError(f"-k values must be at least 1, got {args.k}")
    kind, samples = load_evaluation_samples(args.data)
    model = SimilarityModel.load(args.servable)
    metrics = evaluate_samples(model, kind, samples, args.k)
    if args.json:
        print(json.dumps(metrics, sort_keys=True))
        return 0
    print(f"{len(samples)} samples ({kind}) from {args.data}")
    for name, value in metrics.items():
        print(f"{name:<16}{value:.4f}")
    return 0
