"""Standalone DDP run for tests/quaterion/train/test_cache_ddp.py (not collected by pytest).

`python ddp_cache_script.py OUT_DIR DEVICES MODE[,MODE]` (MODE: cache, nocache or mixed) trains
a head on clustered data with `Trainer(accelerator="cpu", devices=DEVICES, strategy="ddp")`, once
per mode; Lightning's launcher re-executes this script for the other ranks. For each mode every
rank writes `OUT_DIR/<mode>-rank<r>.json`: the sample ids it trained on per epoch and the
held-out precision@1 of the trained model, and how many records the encoder encoded.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests/ (support helpers)

from support import (  # noqa: E402
    HeadModel,
    VectorEncoder,
    group_samples,
    make_clusters,
    precision_at_1,
)

from quaterion import Quaterion  # noqa: E402
from quaterion.dataset import GroupSimilarityDataLoader  # noqa: E402
from quaterion.loss import TripletLoss  # noqa: E402
from quaterion.train.cache import CacheConfig, CacheType  # noqa: E402

EPOCHS = 4
BATCH_SIZE = 32  # global batch: each of the W ranks takes BATCH_SIZE // W samples per step


class IndexedVectors(torch.utils.data.Dataset):
    """Group samples whose first coordinate is the sample id (so a rank can report its ids)."""

    def __init__(self, vectors: torch.Tensor, labels: torch.Tensor):
        ids = torch.arange(len(vectors), dtype=torch.float).unsqueeze(1)
        self.samples = group_samples(torch.cat([ids, vectors], dim=1), labels)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        return self.samples[index]


class IdVectorEncoder(VectorEncoder):
    """Encoder of `[id, vector]` records: embeds the vector (frozen identity or trainable
    linear map), ignores the id."""

    calls = 0  # records encoded in this process (every instance)

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        IdVectorEncoder.calls += len(batch)
        return super().forward(batch[:, 1:])


class CachedHeadModel(HeadModel):
    """`mode`: "cache" (frozen encoder, full cache), "nocache", or "mixed" (a cached frozen
    encoder next to a trainable one)."""

    def __init__(self, mode: str, **kwargs):
        self.mode = mode
        super().__init__(**kwargs)

    def configure_encoders(self):
        if self.mode == "mixed":
            return {"default": IdVectorEncoder(self.dim), "tuned": IdVectorEncoder(self.dim, True)}
        return IdVectorEncoder(self.dim)

    def configure_caches(self):
        return None if self.mode == "nocache" else CacheConfig(CacheType.CPU)


class SeenIds(Callback):
    """Records the ids (first input coordinate) of the training samples of each epoch."""

    def __init__(self):
        self.epochs: list[list[int]] = []

    def on_train_epoch_start(self, trainer, pl_module):
        self.epochs.append([])

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        data = batch[0]["data"]["default"]  # cache rows (= sample ids) or [id, vector] records
        ids = data if data.dim() == 1 else data[:, 0].round().long()
        self.epochs[-1].extend(ids.tolist())


def fit(out_dir: Path, devices: int, mode: str) -> None:
    pl.seed_everything(0, verbose=False)
    vectors, labels = make_clusters(n_classes=4, per_class=40, dim=16, seed=0)
    held_out, held_labels = make_clusters(n_classes=4, per_class=40, dim=16, seed=0, data_seed=7)
    loader = GroupSimilarityDataLoader(
        IndexedVectors(vectors, labels), batch_size=BATCH_SIZE // devices, shuffle=True
    )
    model = CachedHeadModel(mode, dim=16, loss_factory=TripletLoss, lr=0.01)
    seen = SeenIds()
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=devices,
        strategy="ddp" if devices > 1 else "auto",
        max_epochs=EPOCHS,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[seen],
    )
    IdVectorEncoder.calls = 0
    Quaterion.fit(model, trainer, loader)
    fill_calls = IdVectorEncoder.calls  # in "cache" mode only the fill encodes
    ids = torch.zeros(len(held_out), 1)
    embeddings = model.model.encode(list(torch.cat([ids, held_out], dim=1)), to_numpy=False)
    result = {
        "rank": trainer.global_rank,
        "world": trainer.world_size,
        "epochs": seen.epochs,
        "fill_calls": fill_calls,
        "precision_at_1": precision_at_1(embeddings, held_labels),
    }
    (out_dir / f"{mode}-rank{trainer.global_rank}.json").write_text(json.dumps(result))


def main() -> None:
    torch.set_num_threads(1)  # the ranks share the machine's cores
    out_dir, devices, modes = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3].split(",")
    for mode in modes:
        fit(out_dir, devices, mode)


if __name__ == "__main__":
    main()
