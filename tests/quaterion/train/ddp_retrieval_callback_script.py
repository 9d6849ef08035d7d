"""Standalone DDP fit for test_train_retrieval_callback.py (not collected by pytest).

``python ddp_retrieval_callback_script.py OUT_DIR`` trains a head with the cache on under
``Trainer(accelerator="cpu", devices=2, strategy="ddp")``; Lightning's launcher re-executes this
script for rank 1. ``RetrievalMetricsCallback`` evaluates every epoch, and ``ModelCheckpoint``
and ``EarlyStopping`` monitor two of its metrics. Each rank writes ``OUT_DIR/rank<r>.json``: the
queries and candidates it ranked each epoch, the ``*_validation`` values it saw each epoch, the
monitors' state, and the final model's embeddings of the validation objects.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, EarlyStopping, ModelCheckpoint

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests/ (support helpers)

from support import HeadModel, group_samples, make_clusters  # noqa: E402

import quaterion.train.callbacks.retrieval_callback as retrieval_callback  # noqa: E402
from quaterion import Quaterion  # noqa: E402
from quaterion.dataset import GroupSimilarityDataLoader  # noqa: E402
from quaterion.loss import TripletLoss  # noqa: E402
from quaterion.train.cache import CacheConfig, CacheType  # noqa: E402
from quaterion.train.callbacks import RetrievalMetricsCallback  # noqa: E402

EPOCHS = 3
VAL_SIZE = 45  # odd: shards of 23 and 22, plus one sample the sampler repeats
KS = (1, 3)


def validation_split() -> tuple[torch.Tensor, torch.Tensor]:
    vectors, labels = make_clusters(per_class=12, data_seed=7)
    return vectors[:VAL_SIZE], labels[:VAL_SIZE]


class CachedHeadModel(HeadModel):
    def configure_caches(self):
        return CacheConfig(CacheType.CPU)


class Recorder(Callback):
    """The ``*_validation`` values every validation ends with (what the monitors read)."""

    def __init__(self):
        self.epochs: list[dict[str, float]] = []

    def on_validation_end(self, trainer, pl_module):
        metrics = trainer.callback_metrics
        self.epochs.append(
            {name: float(value) for name, value in metrics.items() if name.endswith("_validation")}
        )


def main(out_dir: Path) -> None:
    ranked: list[list[int]] = []
    real_score_queries = retrieval_callback.score_queries

    def counting(inputs, *args, **kwargs):  # what this process ranks: [queries, candidates]
        ranked.append([len(inputs.queries), len(inputs.candidates)])
        return real_score_queries(inputs, *args, **kwargs)

    retrieval_callback.score_queries = counting
    pl.seed_everything(0, verbose=False)
    model = CachedHeadModel(16, TripletLoss)
    train_vectors, train_labels = make_clusters(per_class=24)
    train = GroupSimilarityDataLoader(
        group_samples(train_vectors, train_labels), batch_size=16, shuffle=True
    )
    vectors, labels = validation_split()
    val = GroupSimilarityDataLoader(group_samples(vectors, labels), batch_size=8)
    recorder = Recorder()
    checkpoint = ModelCheckpoint(
        dirpath=out_dir / "checkpoints", monitor="r_precision_validation", mode="max"
    )
    stopping = EarlyStopping("map@r_validation", mode="max", patience=EPOCHS)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp",
        max_epochs=EPOCHS,
        callbacks=[RetrievalMetricsCallback(k=KS), recorder, checkpoint, stopping],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    Quaterion.fit(model, trainer, train, val)
    with torch.no_grad():
        embeddings = model.model.encode(list(vectors), to_numpy=False)
    result = {
        "rank": trainer.global_rank,
        "world_size": trainer.world_size,
        "ranked": ranked,
        "epochs": recorder.epochs,
        "checkpoint_best_score": float(checkpoint.best_model_score),
        "checkpoint_file": Path(checkpoint.best_model_path).name,
        "stopping_best_score": float(stopping.best_score),
        "embeddings": embeddings.tolist(),
    }
    path = out_dir / f"rank{trainer.global_rank}.json"
    path.with_suffix(".tmp").write_text(json.dumps(result))
    path.with_suffix(".tmp").replace(path)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
