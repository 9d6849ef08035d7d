"""Head layers compared: which trainable layer on top of a frozen encoder works best?

Every head trains on the same cached MiniLM embeddings (one `save_dir`, so MiniLM runs once
for all of them) with the same loss, and is scored on the same held-out definitions.
`EmptyHead` has nothing to train: it is the frozen encoder itself, the baseline to beat.

    python examples/head_layers.py            # 2000 definitions
    python examples/head_layers.py --small    # 160 definitions, for CI
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable

import pytorch_lightning as pl
import torch
from example_data import lexical_definitions
from torch.optim import Adam

from quaterion import Quaterion, TrainableModel
from quaterion.dataset import GroupSimilarityDataLoader
from quaterion.eval.retrieval import retrieval_metrics
from quaterion.loss import TripletLoss
from quaterion.train.cache import CacheConfig, CacheType
from quaterion_models.encoders.extras import SentenceTransformerEncoder, minilm_path
from quaterion_models.heads import (
    EmptyHead,
    EncoderHead,
    GatedHead,
    LinearHead,
    SkipConnectionHead,
    StackedProjectionHead,
    WideningHead,
)

HEADS: dict[str, Callable[[int], EncoderHead]] = {
    "EmptyHead (frozen MiniLM)": EmptyHead,
    "GatedHead": GatedHead,
    "LinearHead": LinearHead,
    "SkipConnectionHead": SkipConnectionHead,
    "WideningHead": lambda size: WideningHead(size, expansion_factor=2.0),
    "StackedProjectionHead": lambda size: StackedProjectionHead(size, output_sizes=[256, 128]),
}


class HeadModel(TrainableModel):
    def __init__(self, make_head: Callable[[int], EncoderHead], cache_dir: str, lr: float = 3e-3):
        self.lr = lr
        self.make_head = make_head
        self.cache_dir = cache_dir
        super().__init__()

    def configure_encoders(self):
        return SentenceTransformerEncoder(minilm_path())

    def configure_caches(self):
        return CacheConfig(CacheType.AUTO, save_dir=self.cache_dir, batch_size=128)

    def configure_head(self, input_embedding_size: int):
        return self.make_head(input_embedding_size)

    def configure_loss(self):
        return TripletLoss(mining="hard")

    def configure_optimizers(self):
        return Adam(self.model.parameters(), lr=self.lr)


def main(small: bool = False) -> dict[str, float]:
    train, held_out = lexical_definitions(160 if small else 2000)
    groups = torch.tensor([s.group for s in held_out])
    frozen: torch.Tensor | None = None  # held-out MiniLM embeddings, computed once
    scores = {}
    with tempfile.TemporaryDirectory() as cache_dir:
        for name, make_head in HEADS.items():
            pl.seed_everything(0, verbose=False)
            model = HeadModel(make_head, cache_dir)
            if any(p.requires_grad for p in model.model.head.parameters()):
                trainer = pl.Trainer(
                    max_epochs=2 if small else 10,
                    logger=False,
                    enable_checkpointing=False,
                    enable_model_summary=False,
                    enable_progress_bar=False,
                )
                Quaterion.fit(
                    model,
                    trainer,
                    GroupSimilarityDataLoader(train, batch_size=64, shuffle=True),
                    GroupSimilarityDataLoader(held_out, batch_size=64),
                )
            if frozen is None:  # the first head is EmptyHead: its model is MiniLM alone
                texts = [s.obj for s in held_out]
                frozen = model.model.encode(texts, batch_size=128, to_numpy=False)
            with torch.no_grad():  # the servable is encoder -> head: apply the head to MiniLM's
                embeddings = model.model.head.eval()(frozen)
            scores[name] = float(retrieval_metrics(embeddings, groups)["r_precision"])
    print(f"held-out R-precision by head ({len(held_out)} definitions):")
    for name, value in sorted(scores.items(), key=lambda item: -item[1]):
        print(f"  {name:<28}{value:.4f}")
    return scores


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="tiny run, for CI")
    main(parser.parse_args().small)
