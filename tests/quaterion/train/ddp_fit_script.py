"""Standalone fit for test_train_ddp.py: ``python ddp_fit_script.py OUT_DIR --devices N``.

With ``--devices 2`` Lightning's ``strategy="ddp"`` launcher re-executes this script once per
extra process, so it must be a script (not pytest). Each process writes
``OUT_DIR/rank<r>.json`` with what the test checks: held-out precision@1, steps, and the XBM
memory it ended with (identical on every rank when batches are gathered from all processes).
"""

from __future__ import annotations

import argparse
import json
import os

import pytorch_lightning as pl
import torch

from quaterion import Quaterion, TrainableModel
from quaterion.dataset import GroupSimilarityDataLoader, SimilarityGroupSample
from quaterion.loss import TripletLoss
from quaterion.train.xbm import XbmConfig
from quaterion_models.encoders import Encoder
from quaterion_models.heads import LinearHead

DIM, INFORMATIVE, CLASSES, PER_CLASS, BATCH = 16, 4, 4, 24, 16
XBM = XbmConfig(weight=0.5, buffer_size=200, start_iteration=2)


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

    def save(self, output_path):
        pass

    @classmethod
    def load(cls, input_path):
        return cls()


class Model(TrainableModel):
    def configure_encoders(self):
        return FrozenVectors()

    def configure_head(self, input_embedding_size):
        return LinearHead(input_embedding_size, output_size=8)

    def configure_loss(self):
        return TripletLoss(mining="hard")

    def configure_xbm(self):
        return XBM

    def configure_optimizers(self):
        return torch.optim.Adam(self.model.parameters(), lr=0.02)


def clusters(data_seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Class shows in 4 of 16 dims; the rest is larger noise (as in tests/conftest.py)."""
    centres = torch.randn(CLASSES, INFORMATIVE, generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(data_seed)
    labels = torch.arange(CLASSES).repeat_interleave(PER_CLASS)
    signal = 1.5 * centres[labels] + 0.4 * torch.randn(len(labels), INFORMATIVE, generator=g)
    noise = 2.5 * torch.randn(len(labels), DIM - INFORMATIVE, generator=g)
    return torch.cat([signal, noise], dim=1), labels


def loader(data_seed: int, shuffle: bool) -> GroupSimilarityDataLoader:
    vectors, labels = clusters(data_seed)
    samples = [SimilarityGroupSample(v, int(g)) for v, g in zip(vectors, labels, strict=True)]
    return GroupSimilarityDataLoader(samples, batch_size=BATCH, shuffle=shuffle)


def precision_at_1(embeddings: torch.Tensor, labels: torch.Tensor) -> float:
    unit = torch.nn.functional.normalize(embeddings, dim=1)
    similarity = unit @ unit.T
    similarity.fill_diagonal_(-float("inf"))
    return (labels[similarity.argmax(dim=1)] == labels).float().mean().item()


def run(out_dir: str, devices: int, epochs: int) -> None:
    pl.seed_everything(0, verbose=False)
    model = Model()
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=devices,
        strategy="ddp" if devices > 1 else "auto",
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    Quaterion.fit(model, trainer, loader(1, shuffle=True), loader(99, shuffle=False))
    held_out, held_out_labels = clusters(99)
    memory, memory_groups = model._xbm.buffer.get()
    result = {
        "world_size": trainer.world_size,
        "global_step": trainer.global_step,
        "precision_at_1": precision_at_1(
            model.model.encode(list(held_out), to_numpy=False), held_out_labels
        ),
        "validation_loss": float(trainer.callback_metrics["validation_loss"]),
        "memory_rows": len(memory),
        "memory_checksum": float(memory.double().sum()),
        "memory_groups": memory_groups.tolist(),
    }
    path = os.path.join(out_dir, f"rank{trainer.global_rank}.json")
    with open(path + ".tmp", "w") as file:
        json.dump(result, file)
    os.replace(path + ".tmp", path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out_dir")
    parser.add_argument("--devices", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    run(args.out_dir, args.devices, args.epochs)


if __name__ == "__main__":
    main()
