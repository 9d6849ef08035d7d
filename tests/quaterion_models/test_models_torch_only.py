"""`quaterion_models` imports and serves a model with torch alone (no Lightning, no quaterion)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from quaterion_models import SimilarityModel
from quaterion_models.heads import SequentialHead, SwitchHead

ENCODER_MODULE = """
import os

import torch
from torch import nn

from quaterion_models.encoders import Encoder
from quaterion_models.utils.files import load_tensors, save_tensors_atomic


class TinyEncoder(Encoder):
    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(3, 4)

    @property
    def trainable(self):
        return True

    @property
    def embedding_size(self):
        return 4

    @classmethod
    def extract_meta(cls, batch):
        return [{"encoder": "a" if sum(record) < 0 else "b"} for record in batch]

    def get_collate_fn(self):
        return torch.tensor

    def forward(self, batch):
        return self.layer(batch)

    def save(self, output_path):
        save_tensors_atomic(self.state_dict(), os.path.join(output_path, "w.safetensors"))

    @classmethod
    def load(cls, input_path):
        encoder = cls()
        encoder.load_state_dict(load_tensors(os.path.join(input_path, "w.safetensors")))
        return encoder


class CrashingEncoder(TinyEncoder):
    def save(self, output_path):
        super().save(output_path)
        os._exit(3)  # a hard crash: no exception handler, no cleanup
"""

BLOCK_IMPORTS = """
import importlib.abc
import sys

BLOCKED = {"pytorch_lightning", "lightning", "lightning_fabric", "quaterion"}


class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is blocked in this test")
        return None


sys.meta_path.insert(0, Blocker())
for name in BLOCKED:
    try:
        __import__(name)
    except ImportError:
        pass
    else:
        raise SystemExit(f"{name} was importable")
"""

LOAD_ENCODE_THEN_CRASH = """
import json
import pkgutil
import sys

import quaterion_models
from quaterion_models import SimilarityModel
from quaterion_models.heads import EmptyHead

for module in pkgutil.walk_packages(quaterion_models.__path__, "quaterion_models."):
    if not module.name.startswith("quaterion_models.encoders.extras."):
        __import__(module.name)
model = SimilarityModel.load(sys.argv[1], trusted_modules=["tiny_encoder_module"])
print(json.dumps(model.encode(json.loads(sys.argv[2]), batch_size=2).tolist()), flush=True)
heavy = {"transformers", "sentence_transformers", "gensim", "onnx", "onnxruntime", "qdrant_client"}
loaded_heavy = sorted(heavy & set(sys.modules))
assert not loaded_heavy, loaded_heavy

from tiny_encoder_module import CrashingEncoder

SimilarityModel(CrashingEncoder(), EmptyHead(4)).save(sys.argv[1])
"""

RECORDS = [[1.0, 2.0, 3.0], [-1.0, -2.0, 0.5], [0.0, 0.5, -0.1]]


@pytest.fixture(scope="module")
def isolated_run(tmp_path_factory):
    """Save a model here, then in a torch-only process: load, encode, crash while re-saving."""
    root = tmp_path_factory.mktemp("torch_only")
    (root / "tiny_encoder_module.py").write_text(ENCODER_MODULE)
    sys.path.insert(0, str(root))
    try:
        from tiny_encoder_module import TinyEncoder

        torch.manual_seed(0)
        head = SwitchHead(
            {
                "a": SequentialHead(torch.nn.Linear(4, 2), torch.nn.Tanh(), output_size=2),
                "b": SequentialHead(torch.nn.GELU(), torch.nn.Linear(4, 2), output_size=2),
            },
            input_embedding_size=4,
        )
        model = SimilarityModel(TinyEncoder(), head)
        model.save(root / "servable")
        expected = model.encode(RECORDS, to_numpy=False)
    finally:
        sys.path.remove(str(root))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(root), str(Path(__file__).resolve().parents[2])]),
    }
    script = BLOCK_IMPORTS + LOAD_ENCODE_THEN_CRASH
    result = subprocess.run(
        [sys.executable, "-c", script, str(root / "servable"), json.dumps(RECORDS)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return root, expected, result


def test_servable_loads_and_encodes_without_lightning_or_quaterion(isolated_run):
    _, expected, result = isolated_run
    assert result.returncode == 3, result.stderr  # 3: the deliberate crash at the very end
    torch.testing.assert_close(torch.tensor(json.loads(result.stdout)), expected)


def test_hard_crash_during_save_leaves_the_previous_servable(isolated_run):
    root, expected, result = isolated_run
    assert result.returncode == 3, result.stderr
    loaded = SimilarityModel.load(root / "servable")
    torch.testing.assert_close(loaded.encode(RECORDS, to_numpy=False), expected)
    leftovers = [path for path in root.iterdir() if path.name.startswith(".servable.tmp-")]
    assert len(leftovers) == 1  # the crashed attempt: hidden, and not loadable
    with pytest.raises(FileNotFoundError, match="model config"):
        SimilarityModel.load(leftovers[0])
