"""DDP on CPU with the cache on, off and partial: ranks train on disjoint shards that cover the
data, the full cache shards like Lightning's DistributedSampler, and quality matches one
process."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from support import fork_ranks

SCRIPT = Path(__file__).with_name("ddp_cache_script.py")
ROOT = SCRIPT.parents[3]
MODES = ("cache", "nocache", "mixed")


def load_module(path: Path = SCRIPT):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ddp_fit_with_and_without_cache(tmp_path):
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    env["QUATERION_PROGRESS"] = "0"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path), "2", ",".join(MODES)],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    # every process tears its process group down before the interpreter ends
    assert "terminate called" not in done.stderr
    runs = {
        (mode, rank): json.loads((tmp_path / f"{mode}-rank{rank}.json").read_text())
        for mode in MODES
        for rank in (0, 1)
    }
    script = load_module()
    num_samples = 4 * 40
    for run in runs.values():
        assert run["world"] == 2 and len(run["epochs"]) == script.EPOCHS
    for mode in MODES:
        for epoch in range(script.EPOCHS):
            shards = [runs[mode, rank]["epochs"][epoch] for rank in (0, 1)]
            assert len(shards[0]) == len(shards[1]) == num_samples // 2
            assert sorted(shards[0] + shards[1]) == list(range(num_samples))
    assert runs["cache", 0]["epochs"] == runs["nocache", 0]["epochs"]
    assert runs["cache", 0]["epochs"][0] != runs["cache", 0]["epochs"][1]  # reshuffled
    # the processes split the fill: 5 fill batches of 32, batches 0, 2, 4 on rank 0
    assert [runs["cache", rank]["fill_calls"] for rank in (0, 1)] == [96, 64]

    quality = {key: run["precision_at_1"] for key, run in runs.items()}
    assert quality["cache", 0] == quality["cache", 1]  # one model, synchronised
    assert abs(quality["cache", 0] - quality["nocache", 0]) < 1e-6
    assert quality["mixed", 0] == quality["mixed", 1] and quality["mixed", 0] > 0.8

    single_dir = tmp_path / "single"
    single_dir.mkdir()
    script.fit(single_dir, devices=1, mode="cache")
    single = json.loads((single_dir / "cache-rank0.json").read_text())["precision_at_1"]
    assert single > 0.8
    assert abs(quality["cache", 0] - single) <= 0.05


def test_two_processes_split_the_fill_and_both_hold_every_row(tmp_path):
    # forked, not spawned: the children share this process's imports, where three fresh
    # interpreters importing torch and Lightning took over 300 s on a loaded machine
    script = load_module(SCRIPT.with_name("ddp_split_fill_script.py"))
    assert fork_ranks(lambda rank, port: script.run(rank, str(tmp_path), str(port))) == [0, 0]
    ranks = [torch.load(tmp_path / f"rank{rank}.pt") for rank in (0, 1)]
    for case, rows in (("keys=False", 128), ("keys=True", None)):
        calls = [ranks[rank][case]["calls"] for rank in (0, 1)]
        objects = ranks[0][case]["objects"].reshape(64, 2, 4)  # [a, b] per sample
        expected = (objects * 2 + 1).reshape(128, 4)  # oracle: the encoder on every object
        for rank in (0, 1):
            assert torch.equal(ranks[rank][case]["embeddings"], expected)
            assert ranks[rank][case]["rows"] == (rows or ranks[0][case]["rows"])
        # 16 fill batches of 8 objects, every other one per process
        assert calls == [64, 64] if rows else 0 < min(calls) and max(calls) < 128
