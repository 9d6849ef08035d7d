"""Two Gloo processes fill one cache together; test_cache_ddp.py forks `run` twice (not
collected).

`python ddp_split_fill_script.py OUT_DIR PORT` runs it on its own: ranks 0 and 1 each set up
the cache of the same 64 pair samples (128 objects, fill batch 8, cache keys that repeat) and
write `OUT_DIR/rank<r>.pt`: how many objects their encoder encoded and the embeddings of every
object the cache holds afterwards.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests/ (support helpers)

from support import HeadModel, VectorEncoder  # noqa: E402

from quaterion.dataset import PairsSimilarityDataLoader, SimilarityPairSample  # noqa: E402
from quaterion.loss import ContrastiveLoss  # noqa: E402
from quaterion.train.cache import CacheConfig, CacheType  # noqa: E402


class CountingEncoder(VectorEncoder):
    """Frozen `x -> 2x + 1`; counts the objects it encodes."""

    def __init__(self):
        super().__init__(4)
        self.calls = 0

    def forward(self, batch):
        self.calls += len(batch)
        return batch * 2 + 1


class SplitModel(HeadModel):
    def __init__(self, keys: bool):
        self.keys = keys
        super().__init__(4, ContrastiveLoss)

    def configure_encoders(self):
        return CountingEncoder()

    def configure_caches(self):
        key = (lambda obj: int(obj[0])) if self.keys else {}
        return CacheConfig(CacheType.CPU, batch_size=8, key_extractors=key)


def samples() -> list[SimilarityPairSample]:
    vectors = torch.arange(96.0).reshape(24, 4)  # 24 distinct objects, keyed by their first value
    pick = torch.randint(0, 24, (64, 2), generator=torch.Generator().manual_seed(0))
    return [SimilarityPairSample(vectors[a], vectors[b], score=1.0) for a, b in pick.tolist()]


def run(rank: int, out_dir: str, port: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    result = {}
    for keys in (False, True):
        model = SplitModel(keys)
        loader = PairsSimilarityDataLoader(samples(), batch_size=16)
        train, _ = model.setup_cache(None, loader, None)
        encoder = model.model.encoders["default"]
        result[f"keys={keys}"] = {
            "calls": encoder.wrapped_encoder.calls,
            "rows": encoder.num_rows,
            "objects": torch.stack([torch.cat([s.obj_a, s.obj_b]) for s in samples()]),
            "embeddings": encoder.embeddings("train"),  # object-id order: a_0, b_0, a_1, ...
        }
    torch.save(result, Path(out_dir) / f"rank{rank}.pt")
    dist.destroy_process_group()


if __name__ == "__main__":
    mp.spawn(run, args=(sys.argv[1], sys.argv[2]), nprocs=2)
