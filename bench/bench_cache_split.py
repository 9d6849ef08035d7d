"""The cache fill split across processes: fill time with 1 and 2 DDP processes (Gloo, CPU)
on a real encoder workload, one run, one JSON line on stdout.

Workload: `--texts` WordNet definitions (seeded random order, as bench_text_encode.py), frozen
all-MiniLM-L6-v2 (`SentenceTransformerEncoder`), `CacheConfig(CacheType.CPU, batch_size=...)`
over a `GroupSimilarityDataLoader`. For each world size (1, then 2) a fresh group of processes
is spawned; each loads the model, waits at a barrier, then times `setup_cache` (its share of
the fill, and the exchange that leaves every row in every process) and counts the texts its
encoder ran on (a forward pre-hook). Reported per process: fill wall and CPU seconds, texts
encoded, rows held, peak resident memory (VmHWM); and the speedup of 2 processes over 1 (the
slowest process's wall time counts: the fill ends when the last one does). Each process runs
`--threads` torch threads. Checks that both processes of the 2-process run hold the same rows
as the 1-process run.

    python bench/bench_cache_split.py [--texts 3000] [--batch-size 32] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_cache import Clock, PeakMemory  # noqa: E402  (bench/ is not a package)
from bench_text_encode import fill_model, wordnet_texts  # noqa: E402


def fill_process(rank: int, world: int, port: int, texts: list[str], batch_size: int,
                 threads: int, out_dir: str) -> None:  # fmt: skip
    """One process of the group: fill the cache of `texts`, save what it measured."""
    from quaterion.dataset import GroupSimilarityDataLoader, SimilarityGroupSample
    from quaterion_models.encoders.extras import SentenceTransformerEncoder, minilm_path

    os.environ["QUATERION_PROGRESS"] = "0"
    warnings.filterwarnings("ignore")
    logging.getLogger("sentence_transformers").setLevel(logging.ERROR)
    torch.set_num_threads(threads)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
    )
    encoder = SentenceTransformerEncoder(minilm_path())
    encoded = [0]
    encoder.register_forward_pre_hook(
        lambda module, args: encoded.__setitem__(0, encoded[0] + len(args[0]["input_ids"]))
    )

    samples = [SimilarityGroupSample(obj=text, group=i % 2) for i, text in enumerate(texts)]
    model = fill_model(encoder, batch_size)
    loader = GroupSimilarityDataLoader(samples, batch_size=batch_size)
    memory = PeakMemory()
    dist.barrier()  # every process has loaded its model: the fills start together
    memory.reset()
    with Clock() as clock:
        model.setup_cache(None, loader, None)
    cache = model.model.encoders["default"]
    torch.save(
        {
            "wall_s": clock.wall,
            "cpu_s": clock.cpu,
            "texts_encoded": encoded[0],
            "rows": cache.num_rows,
            "embeddings": cache.embeddings("train").clone(),
            "peak_rss_mb": memory.peak_mb(),
        },
        Path(out_dir) / f"world{world}-rank{rank}.pt",
    )
    dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=3000, help="WordNet definitions filled")
    parser.add_argument("--batch-size", type=int, default=32, help="fill batch size")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    args = parser.parse_args()
    load_start = os.getloadavg()
    texts = wordnet_texts(args.texts)
    runs: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench_cache_split_") as out_dir:
        for world in (1, 2):
            mp.spawn(
                fill_process,
                args=(world, free_port(), texts, args.batch_size, args.threads, out_dir),
                nprocs=world,
            )
            ranks = [torch.load(Path(out_dir) / f"world{world}-rank{r}.pt") for r in range(world)]
            runs[world] = ranks
    single = runs[1][0]["embeddings"]
    result: dict[str, Any] = {
        "bench": "cache_split",
        "workload": {
            "texts": len(texts),
            "source": "WordNet definitions, seeded random order",
            "encoder": "all-MiniLM-L6-v2 (SentenceTransformerEncoder)",
            "fill_batch_size": args.batch_size,
            "torch_threads_per_process": args.threads,
            "cpus": os.cpu_count(),
        },
    }
    for world, ranks in runs.items():
        result[f"processes_{world}"] = {
            "fill_wall_s": round(max(rank["wall_s"] for rank in ranks), 2),
            "per_process": [
                {
                    "fill_wall_s": round(rank["wall_s"], 2),
                    "fill_cpu_s": round(rank["cpu_s"], 2),
                    "texts_encoded": rank["texts_encoded"],
                    "rows_held": rank["rows"],
                    "same_rows_as_1_process": bool(
                        torch.allclose(rank["embeddings"], single, atol=1e-5)
                    ),
                    "peak_rss_mb": round(rank["peak_rss_mb"], 1),
                }
                for rank in ranks
            ],
        }
    result["fill_speedup_2_over_1_processes"] = (
        result["processes_1"]["fill_wall_s"] / result["processes_2"]["fill_wall_s"]
    )
    result["load_avg_start"] = [round(x, 2) for x in load_start]
    result["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
