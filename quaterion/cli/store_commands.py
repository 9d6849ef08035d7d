"""`quaterion index` and `quaterion search`: a servable's embeddings in Qdrant.

A store is either a directory (embedded Qdrant Edge, nothing to run) or the URL of a Qdrant
server (`http://...`, through qdrant-client); both sit behind `quaterion.serving.VectorStore`.
A store records the servable that built it: `search` with another servable is refused, and
`index` into an existing store needs `--append` or `--replace` (points have content-derived
ids, so nothing is overwritten by position and re-indexed objects are not duplicated).
"""

from __future__ import annotations

import argparse
from typing import Any

from quaterion.cli.data_sources import add_columns_argument
from quaterion.serving.locations import DEFAULT_COLLECTION


def _payload(obj: Any, label: int | float, kind: str) -> dict[str, Any]:
    """What a point carries: the text or image, and its group (`label`) or, for pair data, its
    pair's score (`pair_score`: not a group, so no page shows it as one)."""
    from quaterion.serving.payloads import object_payload

    return {"label" if kind == "groups" else "pair_score": label, **object_payload(obj)}


def add_index_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `quaterion index`."""
    parser.add_argument("servable", help="directory written by `quaterion fit` / save_servable")
    parser.add_argument(
        "data",
        help="a CSV/TSV/JSONL file of groups (obj, group) or pairs (obj_a, obj_b, score; the "
        "obj_b column is indexed), or a fit config (its held-out split)",
    )
    add_columns_argument(parser)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--store", help="directory of an embedded Qdrant Edge store")
    where.add_argument("--url", help="URL of a Qdrant server, e.g. http://localhost:6333")
    parser.add_argument("--collection", default=DEFAULT_COLLECTION, help="server collection")
    parser.add_argument("--batch-size", type=int, default=64, help="encoding batch size")
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument(
        "--append",
        action="store_true",
        help="add to an existing store built by the same servable (objects already there are "
        "updated, not duplicated)",
    )
    existing.add_argument(
        "--replace",
        action="store_true",
        help="rebuild an existing store from this data alone (its points are deleted first)",
    )
    parser.add_argument(
        "--no-baseline",
        action="store_true",
        help="skip the frozen encoder's vectors (indexed beside the servable's by default, for "
        "the comparison on `quaterion serve`'s page)",
    )


def run_index(args: argparse.Namespace) -> int:
    """Encode the data with the servable and upsert it under content-derived point ids."""
    from quaterion.cli.data_sources import load_evaluation_samples
    from quaterion.serving.baseline import encode_with_baseline
    from quaterion.serving.indexing import check_index, index_objects
    from quaterion.utils.output_paths import check_output_dir
    from quaterion_models import SimilarityModel

    if args.store is not None:
        check_output_dir(args.store, "vector store directory (--store)")
    kind, samples = load_evaluation_samples(args.data, args.columns)
    if kind == "groups":
        objects, labels = [s.obj for s in samples], [s.group for s in samples]
    else:
        objects, labels = [s.obj_b for s in samples], [s.score for s in samples]
    model = SimilarityModel.load(args.servable)
    location = args.url or args.store
    mode = "append" if args.append else "replace" if args.replace else "new"
    check_index(location, args.servable, model.head.output_size, mode, args.collection)
    if args.no_baseline:  # the frozen encoders are not needed (nor rebuilt)
        frozen = None
        embeddings = model.encode(
            objects, batch_size=args.batch_size, to_numpy=False, show_progress=True
        )
    else:
        frozen, embeddings = encode_with_baseline(
            model, objects, batch_size=args.batch_size, show_progress=True
        )
    payloads = [_payload(obj, label, kind) for obj, label in zip(objects, labels, strict=True)]
    report = index_objects(
        location,
        args.servable,
        objects,
        labels,
        payloads,
        embeddings,
        baseline=frozen,
        mode=mode,
        collection=args.collection,
    )
    print(report.describe(location))
    if not args.no_baseline:
        print("The frozen encoder's vectors of the same objects are indexed beside them")
    return 0


def add_search_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `quaterion search`."""
    parser.add_argument("store", help="store directory, or a Qdrant server URL (http://...)")
    parser.add_argument("servable", help="the servable that indexed the store")
    parser.add_argument("query", help="text to search for")
    parser.add_argument("-k", type=int, default=5, help="neighbours to show (default 5)")
    parser.add_argument("--collection", default=DEFAULT_COLLECTION, help="server collection")


def run_search(args: argparse.Namespace) -> int:
    """Print the k nearest stored objects of the encoded query, best first."""
    from quaterion.serving.locations import open_store
    from quaterion.serving.provenance import check_store_servable
    from quaterion_models import SimilarityModel

    if args.k < 1:
        raise ValueError(f"-k must be at least 1, got {args.k}")
    model = SimilarityModel.load(args.servable)
    dim = model.head.output_size
    check_store_servable(args.store, args.servable, dim, args.collection)
    query = model.encode([args.query], to_numpy=False)
    with open_store(args.store, dim, args.collection, create=False) as store:
        if args.k > store.count():
            raise ValueError(
                f"-k {args.k} is larger than the {store.count()} points in {args.store}; use "
                f"-k {store.count()} or less"
            )
        result = store.search(query, k=args.k)
    for rank, (point, score, payload) in enumerate(
        zip(result.ids[0].tolist(), result.scores[0].tolist(), result.payloads[0], strict=False),
        start=1,
    ):
        shown = payload.get("text", f"point {point}")
        tag = payload.get("label", payload.get("pair_score"))
        print(f"{rank:>3}. {score:.4f}  [{tag}] {shown}")
    return 0
