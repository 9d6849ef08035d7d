"""A process that dies while writing a servable, a cache or an ONNX export leaves nothing that
loads as if it were whole: the new artefact is absent, or the previous one is intact.

The crashes are real (`os._exit` inside the write, in a child process: no `finally` runs); see
die_while_writing_script.py for the hooks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from die_while_writing_script import DIED, cache_model, servable
from reliability_support import group_loader, group_samples

from quaterion.export.onnx import OnnxSimilarityModel
from quaterion.train.cache.fingerprint import encoder_fingerprint
from quaterion.train.cache.store import CacheStore
from quaterion_models import SimilarityModel

HERE = Path(__file__).resolve().parent
PROBE = [torch.randn(16, generator=torch.Generator().manual_seed(i)) for i in range(5)]


@pytest.fixture(scope="module")
def crashed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Runs every crash scenario once; returns the directory holding their leftovers."""
    root = tmp_path_factory.mktemp("crashes")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, str(HERE / "die_while_writing_script.py"), str(root)],
        env=env,
        capture_output=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]
    return root


def _died(root: Path, scenario: str) -> Path:
    status = json.loads((root / "status.json").read_text())
    assert status[scenario] == DIED, f"{scenario} exited with {status[scenario]}, not at the hook"
    return root / scenario


def _visible(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if not path.name.startswith("."))


def test_servable_killed_during_first_save_leaves_no_servable(crashed: Path):
    out = _died(crashed, "servable_new")
    assert _visible(out) == []  # only a hidden staging directory may remain
    with pytest.raises(FileNotFoundError, match="No saved model"):
        SimilarityModel.load(out / "servable")


def test_servable_killed_during_resave_keeps_the_previous_one_whole(crashed: Path):
    out = _died(crashed, "servable_replace")
    loaded = SimilarityModel.load(out / "servable")
    expected = servable(0).encode(PROBE, to_numpy=False)
    assert torch.allclose(loaded.encode(PROBE, to_numpy=False), expected, atol=1e-6)


def test_servable_killed_between_renames_loads_nothing_and_keeps_the_old_copy(crashed: Path):
    out = _died(crashed, "servable_swap")
    with pytest.raises(FileNotFoundError):
        SimilarityModel.load(out / "servable")
    (backup,) = out.glob(".servable.old-*")  # the previous servable, moved aside intact
    expected = servable(0).encode(PROBE, to_numpy=False)
    assert torch.allclose(SimilarityModel.load(backup).encode(PROBE, to_numpy=False), expected)


def _cached_rows(save_dir: Path, data_seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows the cache holds after set-up from `save_dir`, rows the encoder computes)."""
    samples = group_samples(seed=data_seed)
    model = cache_model(save_dir)
    model.setup_cache(None, group_loader(samples), None)
    rows = model.model.encoders["default"].embeddings("train")
    model.unwrap_cache()
    with torch.no_grad():
        fresh = model.model.encoders["default"](torch.stack([s.obj for s in samples]))
    return rows, fresh


def test_cache_killed_during_first_write_is_rebuilt_not_reused(crashed: Path):
    out = _died(crashed, "cache_first_write")
    store = CacheStore(out / "cache")
    fingerprint = encoder_fingerprint(cache_model(out / "cache").model.encoders["default"])
    assert store.load("default", "train", fingerprint) is None
    rows, fresh = _cached_rows(out / "cache", data_seed=0)
    assert torch.allclose(rows, fresh, atol=1e-6)


def test_cache_killed_between_rows_and_manifest_never_serves_wrong_rows(crashed: Path):
    # the file holds rows of data 1, the manifest still describes data 0
    out = _died(crashed, "cache_rewrite")
    for data_seed in (0, 1):
        rows, fresh = _cached_rows(out / "cache", data_seed)
        assert torch.allclose(rows, fresh, atol=1e-6), data_seed


def test_onnx_export_killed_while_saving_leaves_no_model_file(crashed: Path):
    out = _died(crashed, "onnx_export")
    assert _visible(out) == []
    with pytest.raises(FileNotFoundError, match="export_onnx"):
        OnnxSimilarityModel(out / "model.onnx", collate_fn=servable(0).get_collate_fn())
