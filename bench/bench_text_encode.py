"""Text throughput: `SimilarityModel.encode` and the cache fill vs sentence-transformers' own
`encode`, side by side on the same real short texts: one run, one JSON line on stdout.

Texts: a seeded sample of WordNet definitions (all parts of speech), in random order, so
batching by length is what the order given does not already do. Every variant runs the same
all-MiniLM-L6-v2 pipeline object (one `SentenceTransformerEncoder`, whose `.model` is the
sentence-transformers model), at the same batch size and torch thread count:
1. `SentenceTransformer.encode` (the baseline; it sorts texts by length first);
2. `SimilarityModel(encoders=that encoder, head=EmptyHead).encode`;
3. the cache fill (`setup_cache` of a `TrainableModel` over a `GroupSimilarityDataLoader` of
   the texts, `CacheConfig(batch_size=same)`).
Variants alternate for `--rounds` rounds (so drifting load meets each alike); the fastest
round's process CPU seconds make the throughput ratios (wall seconds reported beside them).
A forward pre-hook on the pipeline's Transformer module counts, per variant, the token
positions the network ran on (padded: batch x longest) and the real ones (attention mask).
Peak resident memory (VmHWM) is reset before each variant.

    python bench/bench_text_encode.py [--texts 3000] [--batch-size 32] [--threads 1] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_cache import Clock, PeakMemory  # noqa: E402  (bench/ is not a package)


def wordnet_texts(count: int, seed: int = 0) -> list[str]:
    """`count` distinct WordNet definitions of every part of speech, in a seeded random order."""
    from quaterion.data.wordnet import load_wordnet

    definitions = sorted({synset.definition for synset in load_wordnet() if synset.definition})
    return random.Random(seed).sample(definitions, count)


class TokenCounter:
    """Counts the token positions a Transformer module runs on (forward pre-hook).

    Args:
        module: the sentence-transformers pipeline's first (Transformer) module.
    """

    def __init__(self, module: torch.nn.Module):
        self.padded = self.real = self.batches = 0
        module.register_forward_pre_hook(self._count)

    def _count(self, module: torch.nn.Module, args: tuple) -> None:
        mask = args[0]["attention_mask"]
        self.padded += mask.numel()
        self.real += int(mask.sum())
        self.batches += 1

    def take(self) -> dict[str, int]:
        """The counts since the last call, then reset."""
        counts = {"padded": self.padded, "real": self.real, "batches": self.batches}
        self.padded = self.real = self.batches = 0
        return counts


def fill_model(encoder: Any, batch_size: int) -> Any:
    """A TrainableModel that caches `encoder` on the CPU (fill batches of `batch_size`) under an
    identity head: `setup_cache` on it is the fill `Quaterion.fit` runs."""
    from quaterion import TrainableModel
    from quaterion.loss import TripletLoss
    from quaterion.train.cache import CacheConfig, CacheType
    from quaterion_models.heads import EmptyHead

    class FillModel(TrainableModel):
        def configure_encoders(self):
            return encoder

        def configure_caches(self):
            return CacheConfig(CacheType.CPU, batch_size=batch_size)

        def configure_head(self, input_embedding_size):
            return EmptyHead(input_embedding_size)

        def configure_loss(self):
            return TripletLoss()

        def configure_optimizers(self):
            return None

    return FillModel()


def fill_variant(encoder: Any, texts: list[str], batch_size: int) -> Callable[[], torch.Tensor]:
    """A callable that fills a fresh in-memory cache of `texts` (`setup_cache`, as
    `Quaterion.fit` runs it) and returns the cached rows in text order."""
    from quaterion.dataset import GroupSimilarityDataLoader, SimilarityGroupSample

    samples = [SimilarityGroupSample(obj=text, group=i % 2) for i, text in enumerate(texts)]

    def run() -> torch.Tensor:
        model = fill_model(encoder, batch_size)
        loader = GroupSimilarityDataLoader(samples, batch_size=batch_size)
        model.setup_cache(None, loader, None)
        cache = model.model.encoders["default"]
        rows = cache.embeddings("train").clone()  # object id = sample index
        model.unwrap_cache()
        return rows

    return run


def measure(texts: list[str], batch_size: int, rounds: int) -> dict[str, Any]:
    from quaterion_models import SimilarityModel
    from quaterion_models.encoders.extras import SentenceTransformerEncoder, minilm_path
    from quaterion_models.heads import EmptyHead

    encoder = SentenceTransformerEncoder(minilm_path())
    pipeline = encoder.model  # the sentence-transformers model both sides run
    counter = TokenCounter(pipeline[0])
    model = SimilarityModel(encoders=encoder, head=EmptyHead(encoder.embedding_size))
    variants: dict[str, Callable[[], torch.Tensor]] = {
        "sentence_transformers": lambda: pipeline.encode(
            texts, batch_size=batch_size, convert_to_tensor=True, show_progress_bar=False
        ),
        "similarity_model_encode": lambda: model.encode(
            texts, batch_size=batch_size, to_numpy=False
        ),
        "cache_fill": fill_variant(encoder, texts, batch_size),
    }
    memory = PeakMemory()
    clocks: dict[str, list[Clock]] = {name: [] for name in variants}
    tokens: dict[str, dict[str, int]] = {}
    peaks: dict[str, float] = {}
    outputs: dict[str, torch.Tensor] = {}
    pipeline.encode(texts[:batch_size], batch_size=batch_size)  # warm-up (allocator, kernels)
    counter.take()
    for _ in range(rounds):
        for name, run in variants.items():
            memory.reset()
            with Clock() as clock:
                outputs[name] = run()
            clocks[name].append(clock)
            peaks[name] = max(peaks.get(name, 0.0), round(memory.peak_mb(), 1))
            tokens[name] = counter.take()
    baseline = outputs["sentence_transformers"]
    result: dict[str, Any] = {}
    best_base = min(clock.cpu for clock in clocks["sentence_transformers"])
    best_base_wall = min(clock.wall for clock in clocks["sentence_transformers"])
    for name, done in clocks.items():
        cpu, wall = min(clock.cpu for clock in done), min(clock.wall for clock in done)
        result[name] = {
            "cpu_s": round(cpu, 3),
            "wall_s": round(wall, 3),
            "all_wall_s": [round(clock.wall, 2) for clock in done],
            "texts_per_cpu_s": round(len(texts) / cpu, 1),
            "throughput_vs_sentence_transformers": round(best_base / cpu, 3),  # target >= 0.95
            "throughput_vs_sentence_transformers_wall": round(best_base_wall / wall, 3),
            "token_positions_padded": tokens[name]["padded"],
            "token_positions_real": tokens[name]["real"],
            "padded_over_real": round(tokens[name]["padded"] / tokens[name]["real"], 3),
            "network_calls": tokens[name]["batches"],
            "max_abs_diff_vs_sentence_transformers": float(
                (outputs[name].float() - baseline.float()).abs().max()
            ),
        }
    result["peak_rss_mb"] = peaks
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=3000, help="WordNet definitions encoded")
    parser.add_argument("--batch-size", type=int, default=32, help="batch size of every variant")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of every variant")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    args = parser.parse_args()
    os.environ["QUATERION_PROGRESS"] = "0"
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    for name in ("pytorch_lightning", "lightning", "lightning.pytorch", "sentence_transformers"):
        logging.getLogger(name).setLevel(logging.ERROR)
    load_start = os.getloadavg()
    texts = wordnet_texts(args.texts)
    result = {
        "bench": "text_encode",
        "workload": {
            "texts": len(texts),
            "source": "WordNet definitions, seeded random order",
            "mean_chars": round(sum(map(len, texts)) / len(texts), 1),
            "encoder": "all-MiniLM-L6-v2 (one SentenceTransformer object for every variant)",
            "batch_size": args.batch_size,
            "torch_threads": torch.get_num_threads(),
            "rounds": args.rounds,
            "cpus": os.cpu_count(),
        },
        "ratios_use": "fastest round's process CPU seconds (wall beside them)",
        **measure(texts, args.batch_size, args.rounds),
        "load_avg_start": [round(x, 2) for x in load_start],
        "load_avg_end": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
