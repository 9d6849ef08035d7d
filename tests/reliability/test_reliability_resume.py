"""A fit killed with SIGKILL after a checkpoint exists resumes from its last checkpoint and ends
where an uninterrupted run with the same seed ends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import resume_fit_script
import torch

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "resume_fit_script.py"


def _start(workdir: Path, *args: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), str(workdir), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _finish(process: subprocess.Popen, timeout: float = 120) -> None:
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, output.decode(errors="replace")[-3000:]


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_fit_killed_mid_run_resumes_from_its_last_checkpoint_and_matches(tmp_path: Path):
    crashed = tmp_path / "crashed"
    victim = _start(crashed, "--hold-at", "2")  # waits inside epoch 2, after batch 0
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the script does
    try:
        uninterrupted = resume_fit_script.run(tmp_path / "straight")
    finally:
        torch.set_num_threads(threads)
    deadline = time.monotonic() + 180
    while not (crashed / "holding").exists() and victim.poll() is None:
        assert time.monotonic() < deadline, "the run never reached epoch 2"
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    output, _ = victim.communicate(timeout=30)
    assert victim.returncode == -signal.SIGKILL, output.decode(errors="replace")[-3000:]
    assert not (crashed / "result.json").exists()
    saved = sorted(path.name for path in (crashed / "ckpt").glob("*.ckpt"))
    assert saved == ["epoch=0.ckpt", "epoch=1.ckpt", "last.ckpt"]

    _finish(_start(crashed, "--resume", str(crashed / "ckpt" / "last.ckpt")))
    resumed = json.loads((crashed / "result.json").read_text())
    assert resumed["epochs"] == uninterrupted["epochs"] == 6
    # the resumed process trained epochs 2..5 only: it started from the checkpoint, not anew
    assert uninterrupted["steps"] == 6 * 4 and resumed["steps"] == 4 * 4
    assert abs(resumed["loss"] - uninterrupted["loss"]) < 0.01
    assert abs(resumed["precision_at_1"] - uninterrupted["precision_at_1"]) < 0.01
    for name, weights in uninterrupted["head"].items():
        difference = torch.tensor(resumed["head"][name]) - torch.tensor(weights)
        assert difference.abs().max() < 1e-4, name
    # training did something, so matching is not trivially true
    assert uninterrupted["precision_at_1"] > 0.5
