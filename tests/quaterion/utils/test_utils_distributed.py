"""The process group a DDP fit creates is destroyed at interpreter exit, before finalization."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

SCRIPT = textwrap.dedent(
    """
    import atexit, sys
    import torch.distributed as dist
    from quaterion.utils.distributed import destroy_process_group_at_exit

    # registered first, so it runs last: after the handler under test
    atexit.register(lambda: print("initialized at exit:", dist.is_initialized(), flush=True))
    dist.init_process_group("gloo", init_method="file://" + sys.argv[1], rank=0, world_size=1)
    destroy_process_group_at_exit()
    destroy_process_group_at_exit()  # registers once: a second handler would destroy twice
    if sys.argv[2] == "destroy-early":
        dist.destroy_process_group()  # the user tore it down: the handler does nothing
    print("fit done", flush=True)
    """
)


def run_script(tmp_path: Path, mode: str) -> subprocess.CompletedProcess:
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "store"), mode],
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_process_group_is_destroyed_at_exit_while_the_interpreter_is_alive(tmp_path):
    for mode in ("keep", "destroy-early"):
        done = run_script(tmp_path, mode)
        assert done.returncode == 0, done.stderr[-3000:]
        assert done.stdout.splitlines() == ["fit done", "initialized at exit: False"]
