"""The embedding cache: frozen-encoder outputs computed once, and reused across runs.

With `CacheConfig(CacheType.AUTO, save_dir=...)` the first fit runs MiniLM over the training
and validation texts once, stores the embeddings (safetensors + a JSON manifest) in `save_dir`
and trains the head on them; every epoch after the first costs about as much as a plain loop
over tensors. A second fit with the same encoder and data loads the stored embeddings instead
of encoding again. Change the data or the encoder and the fingerprint no longer matches: the
cache is rebuilt, never reused stale.

    python examples/cache_usage.py            # 2000 definitions
    python examples/cache_usage.py --small    # 160 definitions, for CI
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl
from example_data import lexical_definitions
from torch.optim import Adam

from quaterion import Quaterion, TrainableModel
from quaterion.dataset import GroupSimilarityDataLoader
from quaterion.loss import TripletLoss
from quaterion.train.cache import CacheConfig, CacheType
from quaterion_models.encoders.extras import SentenceTransformerEncoder, minilm_path
from quaterion_models.heads import SkipConnectionHead


class CachedModel(TrainableModel):
    def __init__(self, cache_dir: str, lr: float = 1e-2):
        self.lr = lr
        self.cache_dir = cache_dir
        super().__init__()

    def configure_encoders(self):
        return SentenceTransformerEncoder(minilm_path())

    def configure_caches(self):
        # AUTO: keep embeddings on the trainer's device; save_dir: persist them between runs
        return CacheConfig(CacheType.AUTO, save_dir=self.cache_dir, batch_size=128)

    def configure_head(self, input_embedding_size: int):
        return SkipConnectionHead(input_embedding_size)

    def configure_loss(self):
        return TripletLoss(mining="hard")

    def configure_optimizers(self):
        return Adam(self.model.parameters(), lr=self.lr)


def timed_fit(cache_dir: str, train: list, held_out: list, epochs: int) -> float:
    """Seconds taken by one `Quaterion.fit` of a fresh model."""
    pl.seed_everything(0, verbose=False)
    model = CachedModel(cache_dir)
    trainer = pl.Trainer(
        max_epochs=epochs, logger=False, enable_checkpointing=False, enable_model_summary=False
    )
    started = time.perf_counter()
    Quaterion.fit(
        model,
        trainer,
        GroupSimilarityDataLoader(train, batch_size=64, shuffle=True),
        GroupSimilarityDataLoader(held_out, batch_size=64),
    )
    return time.perf_counter() - started


def main(small: bool = False, cache_dir: str | None = None) -> dict[str, float]:
    train, held_out = lexical_definitions(160 if small else 2000)
    epochs = 2 if small else 10
    with tempfile.TemporaryDirectory() as scratch:
        cache_dir = cache_dir or str(Path(scratch) / "cache")
        first = timed_fit(cache_dir, train, held_out, epochs)  # encodes, then saves the cache
        second = timed_fit(cache_dir, train, held_out, epochs)  # loads the saved cache
        files = sorted(str(p.relative_to(cache_dir)) for p in Path(cache_dir).rglob("*.*"))
    print(f"first fit {first:.1f}s (fills the cache), second fit {second:.1f}s (reuses it)")
    print(f"cache files: {files}")
    return {"first_fit_s": first, "second_fit_s": second}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="tiny run, for CI")
    parser.add_argument("--cache-dir", default=None, help="keep the cache here (default: temp)")
    args = parser.parse_args()
    main(args.small, args.cache_dir)
