"""Cross-Batch Memory (XBM): mine negatives from recent batches, not only the current one.

Embeddings drift slowly while a head trains, so those of the last few hundred samples remain
good stand-ins for fresh ones. XBM keeps them in a ring buffer and adds a weighted loss of the
current batch against the buffer, which gives a small batch the hard negatives of a big one.
It works with group losses that implement `xbm_loss`, such as TripletLoss with hard mining.

    python examples/cross_batch_memory.py            # 2000 definitions
    python examples/cross_batch_memory.py --small    # 160 definitions, for CI
"""

from __future__ import annotations

import argparse

import pytorch_lightning as pl
import torch
from example_data import lexical_definitions
from torch.optim import Adam

from quaterion import Quaterion, TrainableModel
from quaterion.dataset import GroupSimilarityDataLoader
from quaterion.eval.retrieval import retrieval_metrics
from quaterion.loss import TripletLoss
from quaterion.train.cache import CacheConfig, CacheType
from quaterion.train.xbm import XbmConfig
from quaterion_models.encoders.extras import SentenceTransformerEncoder, minilm_path
from quaterion_models.heads import SkipConnectionHead


class XbmModel(TrainableModel):
    def __init__(self, buffer_size: int, start_iteration: int, lr: float = 1e-2):
        self.lr = lr
        self.buffer_size = buffer_size
        self.start_iteration = start_iteration
        super().__init__()

    def configure_encoders(self):
        return SentenceTransformerEncoder(minilm_path())

    def configure_caches(self):
        return CacheConfig(CacheType.AUTO, batch_size=128)

    def configure_head(self, input_embedding_size: int):
        return SkipConnectionHead(input_embedding_size)

    def configure_loss(self):
        return TripletLoss(mining="hard")

    def configure_xbm(self):
        # memory loss weight, ring-buffer length, and the step from which memory is used
        return XbmConfig(
            weight=0.5, buffer_size=self.buffer_size, start_iteration=self.start_iteration
        )

    def configure_optimizers(self):
        return Adam(self.model.parameters(), lr=self.lr)


def main(small: bool = False) -> dict[str, float]:
    pl.seed_everything(0, verbose=False)
    train, held_out = lexical_definitions(160 if small else 2000)
    # batches of 16: each holds few same-category negatives, the memory supplies more
    model = XbmModel(buffer_size=64 if small else 512, start_iteration=2 if small else 50)
    trainer = pl.Trainer(
        max_epochs=2 if small else 10,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
    )
    Quaterion.fit(
        model,
        trainer,
        GroupSimilarityDataLoader(train, batch_size=16, shuffle=True),
        GroupSimilarityDataLoader(held_out, batch_size=16),
    )
    embeddings = model.model.encode([s.obj for s in held_out], batch_size=128, to_numpy=False)
    groups = torch.tensor([s.group for s in held_out])
    metrics = retrieval_metrics(embeddings, groups, k=5)
    scores = {name: float(metrics[name]) for name in ("precision@5", "r_precision", "map@r")}
    print(f"held-out retrieval with XBM ({len(held_out)} definitions): {scores}")
    return scores


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="tiny run, for CI")
    main(parser.parse_args().small)
