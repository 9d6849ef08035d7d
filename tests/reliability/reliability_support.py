"""Small, importable building blocks shared by the reliability tests, their subprocess scripts and
bench/bench_soak.py: a frozen random-MLP encoder over float vectors, a configurable
TrainableModel, seeded clustered data and a quiet trainer.

Classes live in this module (not in a test or `__main__`) so servables that name them load back
in any process that has this directory on `sys.path`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from quaterion import TrainableModel
from quaterion.dataset import (
    GroupSimilarityDataLoader,
    PairsSimilarityDataLoader,
    SimilarityGroupSample,
    SimilarityPairSample,
)
from quaterion.loss import TripletLoss
from quaterion.train.cache import CacheConfig
from quaterion.train.callbacks import StopOnSignal
from quaterion_models.encoders import Encoder
from quaterion_models.heads import SkipConnectionHead
from quaterion_models.utils.files import load_tensors, read_json, save_tensors_atomic


def stack_vectors(batch: list[Tensor]) -> Tensor:
    """Collate of `MlpEncoder`: a list of [D] vectors -> [B, D]."""
    return torch.stack(batch)


class MlpEncoder(Encoder):
    """Frozen random MLP `Linear(D, H) -> tanh -> Linear(H, H)` seeded by `seed`.

    `poison` replaces the output: "nan" / "inf" make every embedding non-finite (to test how
    bad encoder outputs are reported). `trainable=True` makes it a (non-cacheable) tuned encoder.
    """

    def __init__(
        self,
        dim: int = 16,
        hidden: int = 32,
        seed: int = 0,
        poison: str = "",
        trainable: bool = False,
    ):
        super().__init__()
        self.dim, self.hidden, self.seed, self.poison = dim, hidden, seed, poison
        self._trainable = trainable
        generator = torch.Generator().manual_seed(seed)
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, hidden))
        with torch.no_grad():
            for parameter in self.net.parameters():
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.3)

    @property
    def trainable(self) -> bool:
        return self._trainable

    @property
    def embedding_size(self) -> int:
        return self.hidden

    def get_collate_fn(self) -> Callable[[list[Tensor]], Tensor]:
        return stack_vectors

    def forward(self, batch: Tensor) -> Tensor:
        out = self.net(batch)
        if self.poison:
            out = torch.full_like(out, float(self.poison))
        return out

    def _config(self) -> dict[str, Any]:
        return {
            "dim": self.dim,
            "hidden": self.hidden,
            "seed": self.seed,
            "poison": self.poison,
            "trainable": self._trainable,
        }

    def save(self, output_path: str) -> None:
        with open(os.path.join(output_path, "config.json"), "w", encoding="utf-8") as handle:
            json.dump(self._config(), handle)
        save_tensors_atomic(self.state_dict(), os.path.join(output_path, "weights.safetensors"))

    @classmethod
    def load(cls, input_path: str) -> MlpEncoder:
        encoder = cls(**read_json(os.path.join(input_path, "config.json"), "encoder config"))
        encoder.load_state_dict(load_tensors(os.path.join(input_path, "weights.safetensors")))
        return encoder


class SimpleModel(TrainableModel):
    """MlpEncoder + head + loss, all chosen by factories (set before `super().__init__()`).

    Counts `training_step` calls in `steps`, so tests can tell whether training started.
    """

    def __init__(
        self,
        loss: Callable[[], Any] = TripletLoss,
        head: Callable[[int], Any] = SkipConnectionHead,
        encoder: Callable[[], Encoder] = MlpEncoder,
        cache: CacheConfig | None = None,
        xbm: Any = None,
        lr: float = 0.01,
    ):
        self._factories = (loss, head, encoder, cache, xbm)
        self.lr = lr
        self.steps = 0
        super().__init__()

    def configure_encoders(self) -> Encoder:
        return self._factories[2]()

    def configure_head(self, input_embedding_size: int) -> Any:
        return self._factories[1](input_embedding_size)

    def configure_loss(self) -> Any:
        return self._factories[0]()

    def configure_caches(self) -> CacheConfig | None:
        return self._factories[3]

    def configure_xbm(self) -> Any:
        return self._factories[4]

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.model.parameters(), lr=self.lr)

    def training_step(self, batch: Any, batch_idx: int, **kwargs: Any) -> Tensor:
        self.steps += 1
        return super().training_step(batch, batch_idx, **kwargs)


def clusters(n: int = 64, n_groups: int = 4, dim: int = 16, seed: int = 0) -> tuple[Tensor, Tensor]:
    """`n` points [n, dim] in `n_groups` Gaussian clusters, and their integer groups [n]."""
    generator = torch.Generator().manual_seed(seed)
    centres = torch.randn(n_groups, dim, generator=generator) * 2.0
    groups = torch.arange(n) % n_groups
    return centres[groups] + torch.randn(n, dim, generator=generator), groups


def group_samples(n: int = 64, n_groups: int = 4, dim: int = 16, seed: int = 0) -> list:
    vectors, groups = clusters(n, n_groups, dim, seed)
    pairs = zip(vectors, groups, strict=True)
    return [SimilarityGroupSample(obj=vector, group=int(group)) for vector, group in pairs]


def pair_samples(n: int = 32, dim: int = 16, seed: int = 0) -> list:
    vectors, groups = clusters(2 * n, 2, dim, seed)
    return [
        SimilarityPairSample(obj_a=vectors[i], obj_b=vectors[i + n], score=float(i % 2 == 0))
        for i in range(n)
    ]


def group_loader(samples: list | None = None, batch_size: int = 16, **kwargs: Any) -> Any:
    return GroupSimilarityDataLoader(
        group_samples() if samples is None else samples, batch_size=batch_size, **kwargs
    )


def pair_loader(samples: list | None = None, batch_size: int = 8, **kwargs: Any) -> Any:
    return PairsSimilarityDataLoader(
        pair_samples() if samples is None else samples, batch_size=batch_size, **kwargs
    )


def quiet_trainer(root: str, **overrides: Any) -> pl.Trainer:
    """CPU trainer without logger, progress bar, summary or checkpoints (unless overridden)."""
    options: dict[str, Any] = dict(
        accelerator="cpu",
        devices=1,
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=root,
    )
    options.update(overrides)
    return pl.Trainer(**options)


class HoldUntilSignal(pl.Callback):
    """Before batch 1 of epoch `epoch` (batch 0 has trained), create `marker` and wait until
    `stop` has received its signal: the signal then always arrives at the same step, so a test
    that sends it after seeing the marker is not at the mercy of timing. Put it before `stop`
    in the callbacks, so that `stop` acts in the same hook."""

    def __init__(self, epoch: int, marker: Path, stop: StopOnSignal, timeout: float = 600):
        self.epoch, self.marker, self.stop, self.timeout = epoch, marker, stop, timeout

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if trainer.current_epoch != self.epoch or batch_idx != 1:
            return
        self.marker.touch()
        deadline = time.monotonic() + self.timeout
        while self.stop.requested is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no stop signal within {self.timeout}s of {self.marker}")
            time.sleep(0.01)


def start_script(script: Path, *args: str) -> subprocess.Popen:
    """Run `script` with this directory on its path; stdout and stderr together, as bytes."""
    here = str(Path(__file__).resolve().parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([here, os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(
        [sys.executable, str(script), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 300) -> None:
    """Block until `path` exists; fail with the process's output if it ends or time runs out."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            output = process.communicate()[0].decode(errors="replace")[-3000:]
            raise AssertionError(f"{path} never appeared; process output:\n{output}")
        time.sleep(0.05)
