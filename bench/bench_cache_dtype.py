"""Quality of a half-precision cache on the demo task: one run, a table and one JSON line.

The task and training of `quaterion demo` (WordNet noun definitions -> lexical category,
frozen all-MiniLM-L6-v2 + SkipConnectionHead, TripletLoss(margin 0.5, hard mining), Adam 1e-2,
batch 64, the demo's seed and epochs, `quaterion.cli.training.fit`), trained once per
`CacheConfig(storage_dtype=...)`: float32 (twice: the run-to-run noise), float16, bfloat16.
Held-out retrieval (each definition queries all others, cosine) is scored as the demo does:
R-precision, MAP@R, precision@1, and the change against float32.

MiniLM runs once per text: its float32 embeddings are computed with `SimilarityModel.encode`
and served to every fit by a frozen lookup encoder (text -> that row), so every variant caches
exactly the vectors MiniLM gives, in its storage dtype, and the fits differ in that alone.
Also printed: the bytes of the cached rows per dtype, the largest rounding error of the stored
rows, each fit's time, and peak resident memory (VmHWM, reset before each fit).

    python bench/bench_cache_dtype.py [--samples 3600] [--epochs 12] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_cache import Clock, PeakMemory  # noqa: E402  (bench/ is not a package)

from quaterion_models.encoders import Encoder  # noqa: E402

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


class TextIndex:
    """Collate of `LookupEncoder`: texts -> their row numbers (picklable).

    Args:
        rows: text -> row of the lookup table.
    """

    def __init__(self, rows: dict[str, int]):
        self.rows = rows

    def __call__(self, batch: list[str]) -> torch.Tensor:
        return torch.tensor([self.rows[text] for text in batch])


class LookupEncoder(Encoder):
    """Frozen: a text -> its precomputed embedding (MiniLM's, computed once).

    Args:
        texts: the texts, in table order.
        table: `[len(texts), D]` their embeddings.
    """

    def __init__(self, texts: list[str], table: torch.Tensor):
        super().__init__()
        self.index = TextIndex({text: row for row, text in enumerate(texts)})
        self.table = torch.nn.Parameter(table, requires_grad=False)

    @property
    def trainable(self) -> bool:
        return False

    @property
    def embedding_size(self) -> int:
        return self.table.shape[1]

    def get_collate_fn(self) -> TextIndex:
        return self.index

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return self.table[batch]

    def save(self, output_path: str) -> None:
        raise NotImplementedError("a benchmark stand-in")

    @classmethod
    def load(cls, input_path: str) -> LookupEncoder:
        raise NotImplementedError("a benchmark stand-in")


def minilm_embeddings(texts: list[str]) -> torch.Tensor:
    """MiniLM's float32 embeddings of `texts` (`SimilarityModel.encode`, identity head)."""
    from quaterion_models import SimilarityModel
    from quaterion_models.encoders.extras import SentenceTransformerEncoder, minilm_path
    from quaterion_models.heads import EmptyHead

    encoder = SentenceTransformerEncoder(minilm_path())
    model = SimilarityModel(encoders=encoder, head=EmptyHead(encoder.embedding_size))
    return model.encode(texts, batch_size=128, to_numpy=False)


def fit_and_score(data: Any, encoder: LookupEncoder, dtype: torch.dtype, args: Any) -> dict:
    """The demo's fit with `storage_dtype=dtype`; held-out metrics and what the cache held."""
    from quaterion.cli.training import AssembledModel, fit
    from quaterion.dataset import GroupSimilarityDataLoader, SimilarityGroupSample
    from quaterion.eval.retrieval import retrieval_metrics
    from quaterion.loss import TripletLoss
    from quaterion.train.cache import CacheConfig, CacheType
    from quaterion_models.heads import SkipConnectionHead

    class DtypeModel(AssembledModel):
        def configure_caches(self) -> CacheConfig:
            return CacheConfig(CacheType.AUTO, batch_size=128, storage_dtype=dtype)

    def loader(split: list[tuple[str, int]], shuffle: bool) -> GroupSimilarityDataLoader:
        samples = [SimilarityGroupSample(obj=text, group=group) for text, group in split]
        generator = torch.Generator().manual_seed(args.seed)  # as the demo: its own generator
        return GroupSimilarityDataLoader(
            samples, batch_size=64, shuffle=shuffle, generator=generator
        )

    import pytorch_lightning as pl

    stored: dict[str, Any] = {}

    class Inspect(pl.Callback):  # the cached rows, while the cache is in place
        def on_train_start(self, trainer: Any, pl_module: Any) -> None:
            rows = pl_module.model.encoders["default"].rows("train")
            exact = encoder.table[: len(rows)]  # fill order = text order for a group loader
            stored["dtype"] = str(rows.dtype)
            stored["train_rows_mb"] = round(rows.numel() * rows.element_size() / 2**20, 3)
            stored["max_abs_rounding"] = float((rows.float() - exact).abs().max())

    torch.manual_seed(args.seed)  # as the demo: before the model (head) is built
    model = DtypeModel(
        make_encoder=lambda: encoder,
        make_head=lambda size: SkipConnectionHead(size),
        make_loss=lambda size: TripletLoss(margin=0.5, mining="hard"),
        lr=1e-2,
    )
    with Clock() as clock:
        history = fit(
            model,
            loader(data.train, True),
            loader(data.validation, False),
            args.epochs,
            args.seed,
            callbacks=[Inspect()],
        )
    texts = [text for text, _ in data.held_out]
    groups = torch.tensor([group for _, group in data.held_out])
    embeddings = model.model.encode(texts, batch_size=128, to_numpy=False)
    scores = retrieval_metrics(embeddings, groups, k=1)
    return {
        "r_precision": float(scores["r_precision"]),
        "map@r": float(scores["map@r"]),
        "precision@1": float(scores["precision@1"]),
        "final_train_loss": history.train[-1],
        "fit_wall_s": round(clock.wall, 2),
        "fit_cpu_s": round(clock.cpu, 2),
        **stored,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=3600, help="as `quaterion demo`")
    parser.add_argument("--epochs", type=int, default=12, help="as `quaterion demo`")
    parser.add_argument("--seed", type=int, default=0, help="as `quaterion demo`")
    args = parser.parse_args()
    os.environ["QUATERION_PROGRESS"] = "0"
    warnings.filterwarnings("ignore")
    for name in ("pytorch_lightning", "lightning", "lightning.pytorch", "sentence_transformers"):
        logging.getLogger(name).setLevel(logging.ERROR)
    from quaterion.demo import load_demo_data

    load_start = os.getloadavg()
    data = load_demo_data(args.samples, args.seed)
    texts = [text for split in (data.train, data.validation, data.held_out) for text, _ in split]
    with Clock() as encoding:
        encoder = LookupEncoder(texts, minilm_embeddings(texts))
    memory = PeakMemory()
    runs: dict[str, dict] = {}
    for name in ("float32", "float16", "bfloat16", "float32 (repeat)"):
        memory.reset()
        runs[name] = fit_and_score(data, encoder, DTYPES[name.split()[0]], args)
        runs[name]["peak_rss_mb"] = round(memory.peak_mb(), 1)
    base = runs["float32"]
    for run in runs.values():
        for metric in ("r_precision", "map@r", "precision@1"):
            run[f"delta_{metric}"] = run[metric] - base[metric]
        run["rows_mb_vs_float32"] = run["train_rows_mb"] / base["train_rows_mb"]
    columns = {"R-prec": ("r_precision", ".4f"), "dR-prec": ("delta_r_precision", "+.4f"),
               "MAP@R": ("map@r", ".4f"), "dMAP@R": ("delta_map@r", "+.4f"),
               "P@1": ("precision@1", ".4f"), "dP@1": ("delta_precision@1", "+.4f"),
               "rows MB": ("train_rows_mb", ".2f"), "max err": ("max_abs_rounding", ".1e"),
               "fit s": ("fit_wall_s", ".1f")}  # fmt: skip
    print(f"{'storage_dtype':<18}" + "".join(f"{name:>9}" for name in columns), file=sys.stderr)
    for name, run in runs.items():
        cells = "".join(format(run[key], spec).rjust(9) for key, spec in columns.values())
        print(f"{name:<18}{cells}", file=sys.stderr)
    result = {
        "bench": "cache_dtype",
        "workload": {
            "task": "quaterion demo (WordNet noun definitions -> lexical category)",
            "train": len(data.train),
            "validation": len(data.validation),
            "held_out": len(data.held_out),
            "epochs": args.epochs,
            "seed": args.seed,
            "minilm_encoding_wall_s": round(encoding.wall, 1),
            "cpus": os.cpu_count(),
        },
        "runs": runs,
        "max_abs_delta_r_precision": max(abs(run["delta_r_precision"]) for run in runs.values()),
        "load_avg_start": [round(x, 2) for x in load_start],
        "load_avg_end": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
