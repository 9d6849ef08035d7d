"""The cache benchmark's user code fitted by the ORIGINAL Quaterion 0.1.35; prints one JSON line.

Run by bench/bench_cache.py inside the original's venv (built by bench/original_env.sh):

    .venv-original/bin/python -P bench/original_cache_bench.py [--epochs 8] [--threads 1]

`-P` keeps the repository root off `sys.path`, so `import quaterion` finds the original.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ only (for bench_cache)

from bench_cache import framework_run  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    os.environ.setdefault("QUATERION_PROGRESS", "0")
    import quaterion

    if (
        Path(quaterion.__file__).resolve().parent
        == Path(__file__).resolve().parents[1] / "quaterion"
    ):
        raise SystemExit("imported this project's quaterion, not the original: run with -P")
    print(json.dumps(framework_run(args.epochs, args.threads)))


if __name__ == "__main__":
    main()
