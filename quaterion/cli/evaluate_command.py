"""`quaterion evaluate SERVABLE DATA`: retrieval metrics of a saved model on labelled data."""

from __future__ import annotations

import argparse
import json

from quaterion.cli.data_sources import add_columns_argument

#: cut-offs of `quaterion evaluate` without -k (those larger than the data are left out)
DEFAULT_KS = (1, 10)


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `quaterion evaluate`."""
    parser.add_argument("servable", help="directory written by `quaterion fit` / save_servable")
    parser.add_argument(
        "data",
        help="a fit config (.yaml/.toml/.json: its held-out split) or a CSV/TSV/JSONL file of "
        "groups (obj, group) or pairs (obj_a, obj_b, score)",
    )
    parser.add_argument(
        "-k",
        type=int,
        nargs="+",
        default=None,
        help="cut-offs of precision@k, at most the candidates per query (default: 1 10, "
        "those that fit)",
    )
    parser.add_argument("--batch-size", type=int, default=64, help="encoding batch size")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    add_columns_argument(parser)
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="also score the servable's encoders without the head, side by side with the "
        "trained model (did the head help?)",
    )


def check_ks(ks: list[int], candidates: int) -> None:
    """ValueError naming `-k` unless every cut-off is between 1 and the candidates per query."""
    wrong = [k for k in ks if not 1 <= k <= candidates]
    if wrong:
        raise ValueError(
            f"-k {' '.join(map(str, wrong))}: each query ranks {candidates} candidates, so every "
            f"-k value must be between 1 and {candidates}"
        )


def evaluate_samples(
    model: object, kind: str, samples: list, ks: list[int] | None
) -> dict[str, float]:
    """Encode `samples` with `model` and rank them: groups query each other, pairs' obj_a
    queries the obj_b column. `ks` None: cut-offs 1 and 10, those that fit the data."""
    import torch

    from quaterion.dataset.group_labels import GroupLabels
    from quaterion.eval.retrieval import pair_retrieval_metrics, retrieval_metrics

    def encode(objects: list) -> torch.Tensor:
        return model.encode(objects, batch_size=64, to_numpy=False, show_progress=True)

    candidates_per_query = len(samples) - 1 if kind == "groups" else len(samples)
    if ks is None:
        ks = [k for k in DEFAULT_KS if k <= candidates_per_query] or [1]
    check_ks(ks, candidates_per_query)
    if kind == "groups":
        labels = GroupLabels.of_samples(samples)
        labels.check_trainable("the evaluation data")
        groups = torch.tensor([labels.id_of(sample.group) for sample in samples])
        metrics = retrieval_metrics(encode([s.obj for s in samples]), groups, k=ks)
    else:
        candidates = encode([sample.obj_b for sample in samples])
        queries = encode([sample.obj_a for sample in samples])
        pairs = torch.arange(len(samples)).repeat(2, 1).T  # query i <-> candidate i
        scores = torch.tensor([float(sample.score) for sample in samples])
        metrics = pair_retrieval_metrics(candidates, pairs, scores, k=ks, query_embeddings=queries)
    return {name: float(value) for name, value in metrics.items()}


def run_evaluate(args: argparse.Namespace) -> int:
    """Print the metrics table (or JSON) of the servable on the data; with `--baseline` the
    frozen encoders' metrics beside them."""
    from quaterion.cli.data_sources import load_evaluation_samples
    from quaterion.serving.baseline import frozen_baseline
    from quaterion_models import SimilarityModel

    if args.k is not None:  # below 1 is wrong for any data: say so before loading it
        check_ks(args.k, candidates=max(args.k))
    kind, samples = load_evaluation_samples(args.data, args.columns)
    model = SimilarityModel.load(args.servable)
    frozen = frozen_baseline(model) if args.baseline else None  # refused before any encoding
    metrics = evaluate_samples(model, kind, samples, args.k)
    baseline = None if frozen is None else evaluate_samples(frozen, kind, samples, args.k)
    if args.json:
        report = metrics if baseline is None else {"baseline": baseline, "trained": metrics}
        print(json.dumps(report, sort_keys=True))
        return 0
    print(f"{len(samples)} samples ({kind}) from {args.data}")
    if kind == "groups":
        from quaterion.dataset.group_labels import GroupLabels

        print(f"groups: {GroupLabels.of_samples(samples).summary()}")
    if baseline is None:
        for name, value in metrics.items():
            print(f"{name:<16}{value:.4f}")
        return 0
    print(f"{'metric':<16}{'frozen encoder':>15}{'+ trained head':>16}{'change':>10}")
    for name, value in metrics.items():
        print(f"{name:<16}{baseline[name]:>15.4f}{value:>16.4f}{value - baseline[name]:>+10.4f}")
    return 0
