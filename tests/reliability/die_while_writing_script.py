"""Crash Quaterion while it writes a servable, a cache or an ONNX export; run by
test_reliability_atomic.py.

    python die_while_writing_script.py OUTDIR

Imports once, then forks one child per scenario. Each child prepares what the scenario needs,
arms a hook that writes part of a file and calls `os._exit(137)` (no `finally`, no atexit: what
a SIGKILL or a power cut leaves), and starts the write. OUTDIR/<scenario>/ is the child's
directory; OUTDIR/status.json maps each scenario to the child's exit code (137 = died at the
hook as planned).
"""

from __future__ import annotations

import json
import os
import sys
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from reliability_support import MlpEncoder, SimpleModel, group_loader, group_samples
from safetensors.torch import save as safetensors_bytes

import quaterion_models.utils.files as files
from quaterion.train.cache import CacheConfig, CacheType
from quaterion_models import SimilarityModel
from quaterion_models.heads import LinearHead

DIED = 137


def die() -> None:
    os._exit(DIED)


def die_in_safetensors_write() -> None:
    """Every safetensors write writes half its bytes, then the process dies."""

    def half_then_die(tensors: dict[str, torch.Tensor], filename: str, *args: object) -> None:
        payload = safetensors_bytes(tensors)
        with open(filename, "wb") as handle:
            handle.write(payload[: len(payload) // 2])
        die()

    files.save_file = half_then_die


def servable(seed: int) -> SimilarityModel:
    torch.manual_seed(seed)
    return SimilarityModel(MlpEncoder(seed=seed), LinearHead(32, output_size=8))


def cache_model(save_dir: Path) -> SimpleModel:
    return SimpleModel(cache=CacheConfig(CacheType.CPU, save_dir=str(save_dir)))


def fill_cache(save_dir: Path, data_seed: int) -> None:
    """The cache part of a fit (no trainer: fills, then writes `save_dir`)."""
    cache_model(save_dir).setup_cache(None, group_loader(group_samples(seed=data_seed)), None)


def servable_new(out: Path) -> None:
    die_in_safetensors_write()
    servable(0).save(out / "servable")


def servable_replace(out: Path) -> None:
    servable(0).save(out / "servable")
    die_in_safetensors_write()
    servable(1).save(out / "servable")


def servable_swap(out: Path) -> None:
    """Dies between moving the old servable aside and renaming the new one into place."""
    servable(0).save(out / "servable")
    real_replace = os.replace

    def replace(source: str | Path, target: str | Path) -> None:
        if ".tmp-" in Path(source).name and Path(target).name == "servable":
            die()
        real_replace(source, target)

    os.replace = replace
    servable(1).save(out / "servable")


def cache_first_write(out: Path) -> None:
    die_in_safetensors_write()
    fill_cache(out / "cache", data_seed=0)


def cache_rewrite(out: Path) -> None:
    """A valid cache for old data; the data changes; dies after the new rows are renamed into
    place but before their manifest is written."""
    fill_cache(out / "cache", data_seed=0)
    import quaterion.train.cache.store as store

    store.write_json_atomic = lambda path, obj: die()
    fill_cache(out / "cache", data_seed=1)


def onnx_export(out: Path) -> None:
    from quaterion.export.onnx import export_onnx

    def half_then_die(program: object, destination: str, **kwargs: object) -> None:
        with open(destination, "wb") as handle:
            handle.write(b"\x08\x07" * 64)
        die()

    torch.onnx.ONNXProgram.save = half_then_die
    export_onnx(servable(0), out / "model.onnx", [torch.zeros(16), torch.ones(16)])


SCENARIOS: dict[str, Callable[[Path], None]] = {
    "servable_new": servable_new,
    "servable_replace": servable_replace,
    "servable_swap": servable_swap,
    "cache_first_write": cache_first_write,
    "cache_rewrite": cache_rewrite,
    "onnx_export": onnx_export,
}


def main() -> None:
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)  # no thread pool to inherit across fork
    root = Path(sys.argv[1])
    status = {}
    for name, scenario in SCENARIOS.items():
        out = root / name
        out.mkdir(parents=True)
        pid = os.fork()
        if pid == 0:
            try:
                scenario(out)
            except BaseException:
                traceback.print_exc()
                os._exit(1)
            os._exit(0)  # reaching here means the hook never fired
        _, code = os.waitpid(pid, 0)
        status[name] = os.waitstatus_to_exitcode(code)
    (root / "status.json").write_text(json.dumps(status))


if __name__ == "__main__":
    main()
