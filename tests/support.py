"""Test helpers shared by test modules and subprocess scripts: a tiny vector encoder and model,
clustered synthetic data, a precision@1 oracle. (Import from here, never `from conftest`:
several conftest.py files share that module name.)"""

import json
import multiprocessing
import os
import socket
from collections.abc import Callable

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from quaterion import TrainableModel
from quaterion.dataset import SimilarityGroupSample
from quaterion_models.encoders import Encoder
from quaterion_models.heads import LinearHead

# Test tensors are tiny: with several intra-op threads on a busy machine each op waits on thread
# synchronisation (a 16x16 max took ~15 ms instead of ~10 us), so tests run single-threaded.
torch.set_num_threads(1)


def stack_vectors(batch: list[Tensor]) -> Tensor:
    return torch.stack(batch)


class VectorEncoder(Encoder):
    """Records are float vectors; a frozen identity, or a trainable linear map."""

    def __init__(self, dim: int, trainable: bool = False):
        super().__init__()
        self.dim = dim
        self._trainable = trainable
        self.linear = torch.nn.Linear(dim, dim) if trainable else None

    @property
    def trainable(self) -> bool:
        return self._trainable

    @property
    def embedding_size(self) -> int:
        return self.dim

    def get_collate_fn(self):
        return stack_vectors

    def forward(self, batch: Tensor) -> Tensor:
        return batch if self.linear is None else self.linear(batch)

    def save(self, output_path: str) -> None:
        with open(os.path.join(output_path, "config.json"), "w") as file:
            json.dump({"dim": self.dim, "trainable": self._trainable}, file)
        save_file(self.state_dict(), os.path.join(output_path, "weights.safetensors"))

    @classmethod
    def load(cls, input_path: str) -> "VectorEncoder":
        with open(os.path.join(input_path, "config.json")) as file:
            encoder = cls(**json.load(file))
        encoder.load_state_dict(load_file(os.path.join(input_path, "weights.safetensors")))
        return encoder


class HeadModel(TrainableModel):
    """Vector encoder of width ``dim`` + linear head to 8 dims, trained with Adam.

    Takes factories, not modules: attributes are set before ``super().__init__()``, when torch
    does not accept submodules yet."""

    def __init__(self, dim, loss_factory, lr=0.01, trainable_encoder=False, xbm=None, metrics=()):
        self.dim, self.loss_factory, self.lr = dim, loss_factory, lr
        self.trainable_encoder, self.xbm, self.metrics = trainable_encoder, xbm, list(metrics)
        super().__init__()

    def configure_encoders(self):
        return VectorEncoder(self.dim, trainable=self.trainable_encoder)

    def configure_head(self, input_embedding_size):
        return LinearHead(input_embedding_size, output_size=8)

    def configure_loss(self):
        return self.loss_factory()

    def configure_metrics(self):
        return self.metrics

    def configure_xbm(self):
        return self.xbm

    def configure_optimizers(self):
        return torch.optim.Adam(self.model.parameters(), lr=self.lr)


def make_clusters(n_classes=4, per_class=24, dim=16, informative=4, seed=0, data_seed=None):
    """Vectors whose class shows only in ``informative`` dims; the other dims are larger noise,
    so raw nearest neighbours are poor until a head learns to drop the noise.

    ``seed`` fixes the class centres, ``data_seed`` the sampled points (held-out sets share
    centres with the training set)."""
    centres = torch.randn(n_classes, informative, generator=torch.Generator().manual_seed(seed))
    g = torch.Generator().manual_seed(seed + 1 if data_seed is None else data_seed)
    labels = torch.arange(n_classes).repeat_interleave(per_class)
    signal = 1.5 * centres[labels] + 0.4 * torch.randn(len(labels), informative, generator=g)
    noise = 2.5 * torch.randn(len(labels), dim - informative, generator=g)
    return torch.cat([signal, noise], dim=1), labels


def group_samples(vectors: Tensor, labels: Tensor) -> list[SimilarityGroupSample]:
    pairs = zip(vectors, labels, strict=True)
    return [SimilarityGroupSample(obj=vector, group=int(group)) for vector, group in pairs]


def precision_at_1(embeddings: Tensor, labels: Tensor) -> float:
    """Share of points whose cosine nearest neighbour (self excluded) has the same label."""
    unit = torch.nn.functional.normalize(embeddings.float(), dim=1)
    similarity = unit @ unit.T
    similarity.fill_diagonal_(-float("inf"))
    return (labels[similarity.argmax(dim=1)] == labels).float().mean().item()


class PartlyTrainableModel(TrainableModel):
    """`HuggingFaceEncoder(path, trainable_layers=1)` + linear head, its frozen bottom's hidden
    states cached (CPU, fill batches of 4, in `save_dir` when given); `tweak(encoder)` may
    change the encoder before the cache sees it."""

    def __init__(self, path, save_dir=None, tweak=None, storage_dtype=None):
        self.path, self.save_dir, self.tweak, self.storage_dtype = (
            path,
            save_dir,
            tweak,
            storage_dtype,
        )
        super().__init__()

    def configure_encoders(self):
        from quaterion_models.encoders.extras.huggingface_encoder import HuggingFaceEncoder

        encoder = HuggingFaceEncoder(self.path, trainable_layers=1)
        if self.tweak is not None:
            with torch.no_grad():
                self.tweak(encoder)
        return encoder

    def configure_caches(self):
        from quaterion.train.cache import CacheConfig, CacheType

        return CacheConfig(CacheType.CPU, save_dir=self.save_dir, batch_size=4,
                           storage_dtype=self.storage_dtype)  # fmt: skip

    def configure_head(self, input_embedding_size):
        return LinearHead(input_embedding_size, output_size=8)

    def configure_loss(self):
        from quaterion.loss import TripletLoss

        return TripletLoss(mining="hard")

    def configure_optimizers(self):
        return torch.optim.Adam(self.model.parameters(), lr=0.01)


def hidden_state_texts(count=16):
    """`count` short texts of different lengths in two groups: `(text, group)`."""
    words = ["dog", "cat", "market", "bond", "garden", "share", "puppy", "price"]
    return [(" ".join(words[(i + j) % 8] for j in range(1 + i % 5)), i % 2) for i in range(count)]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for a gloo process group or a test server)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def fork_ranks(run: Callable[[int, int], None], world: int = 2, timeout: float = 240) -> list:
    """Exit codes of `run(rank, port)` in `world` forked processes sharing one free port.
    Forked, not spawned: children share this process's imports (fresh interpreters importing
    torch and Lightning took minutes on a loaded machine). A child still alive after `timeout`
    seconds is killed rather than left behind the test."""
    port = free_port()
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=run, args=(rank, port)) for rank in range(world)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=timeout)
    for process in processes:
        if process.is_alive():
            process.kill()
            process.join()
    return [process.exitcode for process in processes]
