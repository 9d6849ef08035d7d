"""Standalone fit for test_train_retrieval_callback.py: ``python retrieval_ddp_script.py OUT``.

Lightning's ``strategy="ddp"`` launcher re-executes this script for the second process. Each
process writes ``OUT/rank<r>.json``: the values RetrievalMetricsCallback logged, the queries and
candidates it ranked each epoch, and the engine's values on the whole validation split.
"""

from __future__ import annotations

import argparse
import json
import os

import pytorch_lightning as pl
import torch

import quaterion.train.callbacks.retrieval_callback as retrieval_callback
from quaterion import Quaterion, TrainableModel
from quaterion.dataset import GroupSimilarityDataLoader, SimilarityGroupSample
from quaterion.eval.retrieval import retrieval_metrics
from quaterion.loss import TripletLoss
from quaterion.train.callbacks import RetrievalMetricsCallback
from quaterion_models.encoders import Encoder
from quaterion_models.heads import LinearHead

DIM, VAL_SIZE = 16, 45


def stack(batch):
    return torch.stack(batch)


class FrozenVectors(Encoder):
    @property
    def trainable(self):
        return False

    @property
    def embedding_size(self):
        return DIM

    def get_collate_fn(self):
        return stack

    def forward(self, batch):
        return batch


class Model(TrainableModel):
    def configure_encoders(self):
        return FrozenVectors()

    def configure_head(self, input_embedding_size):
        return LinearHead(input_embedding_size, output_size=8)

    def configure_loss(self):
        return TripletLoss()

    def configure_optimizers(self):
        return torch.optim.Adam(self.model.parameters(), lr=0.02)


def samples(seed: int, size: int) -> list[SimilarityGroupSample]:
    generator = torch.Generator().manual_seed(seed)
    groups = torch.randint(0, 5, (size,), generator=generator)
    centres = torch.randn(5, DIM, generator=torch.Generator().manual_seed(0))
    vectors = centres[groups] + 1.5 * torch.randn(size, DIM, generator=generator)
    return [SimilarityGroupSample(v, int(g)) for v, g in zip(vectors, groups, strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out_dir")
    args = parser.parse_args()
    ranked = []
    score_queries = retrieval_callback.score_queries

    def recording(inputs, *rest, **kwargs):
        ranked.append((len(inputs.queries), len(inputs.candidates)))
        return score_queries(inputs, *rest, **kwargs)

    retrieval_callback.score_queries = recording
    pl.seed_everything(0, verbose=False)
    model = Model()
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp",
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=[RetrievalMetricsCallback(k=(1, 3))],
    )
    val = samples(99, VAL_SIZE)
    Quaterion.fit(
        model,
        trainer,
        GroupSimilarityDataLoader(samples(1, 64), batch_size=8, shuffle=True),
        GroupSimilarityDataLoader(val, batch_size=4),
    )
    embeddings = model.model.encode([s.obj for s in val], to_numpy=False)
    groups = torch.tensor([s.group for s in val])
    expected = retrieval_metrics(embeddings, groups, (1, 3))
    result = {
        "world_size": trainer.world_size,
        "queries_ranked": [queries for queries, _ in ranked],
        "candidates": [candidates for _, candidates in ranked],
        "logged": {
            name: float(value)
            for name, value in trainer.callback_metrics.items()
            if name.endswith("_validation") and name != "validation_loss"
        },
        "expected": {name: float(value) for name, value in expected.items()},
    }
    path = os.path.join(args.out_dir, f"rank{trainer.global_rank}.json")
    with open(path + ".tmp", "w") as file:
        json.dump(result, file)
    os.replace(path + ".tmp", path)


if __name__ == "__main__":
    main()
