"""`quaterion demo`: fine-tune a head on frozen MiniLM so WordNet definitions group by category.

The task: a WordNet noun definition ("a domesticated carnivorous mammal ...") should retrieve
other definitions of the same lexical category (noun.animal, noun.feeling, noun.artifact ...).
A frozen sentence encoder groups definitions by topic, not by this category, so a small head
trained with a group loss on cached MiniLM embeddings gives a clear gain on definitions it
never saw. The pipeline: cache-backed training -> before/after retrieval table on a held-out
split -> servable saved -> held-out set indexed in embedded Qdrant -> example queries -> PNG.
"""

from __future__ import annotations

import argparse
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quaterion.data.wordnet import BROAD_NOUN_CATEGORIES

#: lexical categories of the demo task
DEMO_CATEGORIES = BROAD_NOUN_CATEGORIES
#: free-text queries run against the indexed held-out definitions
DEMO_QUERIES = (
    "a small animal that lives in trees and eats nuts",
    "a strong feeling of sadness after losing someone",
    "a tool used for cutting wood",
    "a sweet dish served at the end of a meal",
)
SPLIT_FRACTIONS = (0.65, 0.1)  # train, validation; the rest is held out
RETRIEVAL_K = 10
MIN_PER_CATEGORY = 8  # enough for train, validation and a held-out pair in every category
MINILM_LAYERS = 6  # transformer layers of all-MiniLM-L6-v2, the most --trainable-layers takes
ENCODER_LR = 1e-4  # Adam learning rate of MiniLM's trained top layers (the head's: 1e-2)


@dataclass
class DemoData:
    """Definitions (texts) and their category index, split three ways, plus category names.

    Args:
        train: (definition, category index) pairs to train on.
        validation: pairs for validation during training.
        held_out: pairs scored before and after training.
        categories: category names, indexed by category index.
    """

    train: list[tuple[str, int]]
    validation: list[tuple[str, int]]
    held_out: list[tuple[str, int]]
    categories: list[str]


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `quaterion demo`.

    Args:
        parser: the `demo` sub-command's parser.
    """
    parser.add_argument(
        "--output",
        default="runs/demo",
        help="directory for the servable, store and figure (default runs/demo)",
    )
    parser.add_argument("--epochs", type=int, default=12, help="training epochs (default 12)")
    parser.add_argument(
        "--samples",
        type=int,
        default=3600,
        help="WordNet definitions used in total, split 65/10/25 (default 3600)",
    )
    parser.add_argument(
        "--cache-dir",
        default=None,
        help="where MiniLM embeddings persist between runs (default OUTPUT/cache)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of sampling and training")
    parser.add_argument(
        "--trainable-layers",
        type=int,
        default=0,
        help=f"also train MiniLM's top N of {MINILM_LAYERS} layers, on the cached output of the "
        "frozen ones (default 0: the head alone, on cached embeddings)",
    )


def load_demo_data(samples: int, seed: int) -> DemoData:
    """`samples` definitions, an equal share per demo category, split per category.

    Args:
        samples: definitions drawn in all.
        seed: random seed of the draw and the split.
    """
    from quaterion.data.wordnet import LEXNAMES, definition_groups, load_wordnet

    if samples < MIN_PER_CATEGORY * len(DEMO_CATEGORIES):
        raise ValueError(
            f"--samples must be at least {MIN_PER_CATEGORY * len(DEMO_CATEGORIES)} "
            f"({MIN_PER_CATEGORY} per category), got {samples}"
        )
    per_category = samples // len(DEMO_CATEGORIES)
    by_category: dict[str, list[str]] = {category: [] for category in DEMO_CATEGORIES}
    for sample in definition_groups(load_wordnet(("noun",))):
        texts = by_category.get(LEXNAMES[sample.group])
        if texts is not None:
            texts.append(sample.obj)
    rng = random.Random(seed)
    splits: tuple[list[tuple[str, int]], ...] = ([], [], [])
    for index, category in enumerate(DEMO_CATEGORIES):
        texts = sorted(set(by_category[category]))  # a set: a text never lands in two splits
        chosen = rng.sample(texts, min(per_category, len(texts)))
        n_train = round(len(chosen) * SPLIT_FRACTIONS[0])
        n_val = max(1, round(len(chosen) * SPLIT_FRACTIONS[1]))
        bounds = (0, n_train, n_train + n_val, len(chosen))
        for split, start, stop in zip(splits, bounds, bounds[1:], strict=False):
            split.extend((text, index) for text in chosen[start:stop])
    # Shortest texts first: batches of the one encoding pass then hold texts of similar length
    # and pad little (about 40% less encoder work than random order; training still shuffles).
    for split in splits:
        split.sort(key=lambda item: (len(item[0]), item[0]))
    return DemoData(*splits, categories=list(DEMO_CATEGORIES))


def _print_table(rows: dict[str, tuple[float, float]], trained: str = "+ trained head") -> None:
    """The before/after metrics table, one metric per row, with the change."""
    width = max(16, len(trained) + 2)
    print(f"{'metric':<16}{'frozen MiniLM':>15}{trained:>{width}}{'change':>10}")
    for name, (before, after) in rows.items():
        print(f"{name:<16}{before:>15.4f}{after:>{width}.4f}{after - before:>+10.4f}")


def _retrieval_rows(before: Any, after: Any, groups: list[int]) -> dict[str, tuple[float, float]]:
    """Held-out retrieval metrics (each definition queries all others) before and after."""
    import torch

    from quaterion.eval.retrieval import retrieval_metrics

    labels = torch.tensor(groups)
    scores = [
        retrieval_metrics(embeddings, labels, k=(1, RETRIEVAL_K)) for embeddings in (before, after)
    ]
    names = ("precision@1", f"precision@{RETRIEVAL_K}", "r_precision", "map@r", "mrr")
    return {name: (float(scores[0][name]), float(scores[1][name])) for name in names}


def _index_and_query(
    servable: Path,
    store_path: Path,
    embeddings: Any,
    frozen: Any,
    texts: list[str],
    data: DemoData,
    groups: list[int],
) -> None:
    """Index the held-out definitions in embedded Qdrant (with the frozen encoder's vectors
    beside them, for `quaterion serve`) and print the neighbours of a few free-text queries,
    encoded by the servable loaded back from disk."""
    from quaterion.serving.indexing import index_objects
    from quaterion.serving.locations import open_store
    from quaterion_models import SimilarityModel

    payloads = [
        {"label": data.categories[group], "text": text}
        for text, group in zip(texts, groups, strict=True)
    ]
    labels = [payload["label"] for payload in payloads]
    report = index_objects(  # a fresh index for this run's held-out set, baseline beside it
        str(store_path), str(servable), texts, labels, payloads, embeddings, frozen, "replace"
    )
    print(f"Indexed {report.total} held-out definitions in Qdrant Edge at {store_path}")
    served = SimilarityModel.load(servable)
    queries = served.encode(list(DEMO_QUERIES), to_numpy=False)
    with open_store(str(store_path), embeddings.shape[1]) as store:
        result = store.search(queries, k=3)
    for query, scores, hits in zip(DEMO_QUERIES, result.scores, result.payloads, strict=True):
        print(f"\nquery: {query}")
        for score, hit in zip(scores.tolist(), hits, strict=False):
            text = hit["text"] if len(hit["text"]) <= 70 else hit["text"][:67] + "..."
            print(f"  {score:.3f}  [{hit['label']}] {text}")


def run_demo(args: argparse.Namespace) -> int:
    """Train, compare, save, index, query and plot; prints every step and the wall time.

    Args:
        args: the parsed `quaterion demo` options.

    Returns:
        the process exit code.
    """
    started = time.perf_counter()
    import torch

    from quaterion.cli.training import AssembledModel, fit
    from quaterion.dataset import GroupSimilarityDataLoader, SimilarityGroupSample
    from quaterion.loss import TripletLoss
    from quaterion.serving.baseline import encode_with_baseline
    from quaterion.utils.output_paths import check_output_dir
    from quaterion_models.encoders.extras import SentenceTransformerEncoder, minilm_path
    from quaterion_models.heads import SkipConnectionHead

    if args.epochs < 1:
        raise ValueError(f"--epochs must be at least 1, got {args.epochs}")
    top = args.trainable_layers
    if not 0 <= top <= MINILM_LAYERS:
        raise ValueError(
            f"--trainable-layers must be between 0 (the head alone) and {MINILM_LAYERS} "
            f"(MiniLM's layers), got {top}"
        )
    torch.manual_seed(args.seed)
    output = Path(args.output)
    cache_dir = Path(args.cache_dir) if args.cache_dir else output / "cache"
    check_output_dir(output, "demo output directory (--output)")
    check_output_dir(cache_dir, "cache directory (--cache-dir)")
    data = load_demo_data(args.samples, args.seed)
    print(
        f"Task: WordNet noun definitions -> same lexical category, {len(data.categories)} "
        f"categories; {len(data.train)} train / {len(data.validation)} validation / "
        f"{len(data.held_out)} held-out definitions"
    )

    def loader(split: list[tuple[str, int]], shuffle: bool) -> GroupSimilarityDataLoader:
        samples = [SimilarityGroupSample(obj=text, group=group) for text, group in split]
        # own generator: the same shuffles whether the cache is filled or reused
        generator = torch.Generator().manual_seed(args.seed)
        return GroupSimilarityDataLoader(
            samples, batch_size=64, shuffle=shuffle, generator=generator
        )

    model = AssembledModel(
        make_encoder=lambda: SentenceTransformerEncoder(minilm_path(), trainable_layers=top),
        make_head=lambda size: SkipConnectionHead(size),
        make_loss=lambda size: TripletLoss(margin=0.5, mining="hard"),
        lr=1e-2,
        cache_dir=str(cache_dir),
        encoder_lr=ENCODER_LR,
    )
    step = time.perf_counter()
    history = fit(
        model, loader(data.train, True), loader(data.validation, False), args.epochs, args.seed
    )
    what = (
        f"the top {top} MiniLM layer{'s' * (top > 1)} and the head, on the cached output of "
        f"the {MINILM_LAYERS - top} frozen ones ({cache_dir})"
        if top
        else f"the head on cached MiniLM embeddings ({cache_dir})"
    )
    print(
        f"Trained {what} for {args.epochs} epochs in {time.perf_counter() - step:.1f}s; "
        f"final train loss {history.train[-1]:.4f}"
    )

    texts = [text for text, _ in data.held_out]
    groups = [group for _, group in data.held_out]
    if top:  # the encoder itself changed: the baseline is a fresh, frozen MiniLM
        from quaterion_models import SimilarityModel
        from quaterion_models.heads import EmptyHead

        frozen = SentenceTransformerEncoder(minilm_path())
        baseline = SimilarityModel(frozen, EmptyHead(frozen.embedding_size))
        before = baseline.encode(texts, batch_size=128, to_numpy=False, show_progress=True)
        after = model.model.encode(texts, batch_size=128, to_numpy=False, show_progress=True)
    else:
        before, after = encode_with_baseline(model.model, texts, batch_size=128, show_progress=True)
    print(f"\nHeld-out retrieval ({len(texts)} definitions, each queries all the others):")
    rows = _retrieval_rows(before, after, groups)
    _print_table(rows, f"+ top {top} + head" if top else "+ trained head")

    servable = output / "servable"
    model.save_servable(str(servable))
    print(f"\nServable saved to {servable}")
    _index_and_query(servable, output / "qdrant", after, before, texts, data, groups)

    from quaterion.plots import save_demo_figure

    figure = save_demo_figure(
        output / "demo.png",
        history.train,
        history.validation,
        before,
        after,
        groups,
        data.categories,
    )
    print(f"Figure: {figure}")
    print(f"Wall time: {time.perf_counter() - started:.1f}s")
    return 0
