"""Runs the ORIGINAL Quaterion's evaluation on data written by bench/bench_eval.py.

Executed by bench_eval.py inside .venv-original (built by bench/original_env.sh), from outside
the repository so that the original packages, not ours, are imported:
    .venv-original/bin/python -P -W ignore bench/original_eval.py DATA_DIR
DATA_DIR holds embeddings.npy (float32 [N, D]) and groups.npy (int64 [N]). Prints one JSON line:
time, peak memory and value of RetrievalRPrecision.compute and of Evaluator + GroupSampler.
"""

import json
import os
import random
import sys
import time

import numpy as np
import torch

from quaterion.dataset import SimilarityGroupSample
from quaterion.distances import Distance
from quaterion.eval.evaluator import Evaluator
from quaterion.eval.group import RetrievalRPrecision
from quaterion.eval.samplers.group_sampler import GroupSampler
from quaterion_models import SimilarityModel
from quaterion_models.encoders import Encoder
from quaterion_models.heads import EmptyHead


def stack(batch):
    return torch.stack(batch)


class IdentityEncoder(Encoder):
    """Records are embedding rows already."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    @property
    def trainable(self) -> bool:
        return False

    @property
    def embedding_size(self) -> int:
        return self.dim

    def get_collate_fn(self):
        return stack

    def forward(self, batch):
        return batch

    def save(self, output_path):
        raise NotImplementedError

    @classmethod
    def load(cls, input_path):
        raise NotImplementedError


def memory_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def measure(run):
    """(seconds, peak MB above the memory in use before, result) of run()."""
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # restart the peak-RSS counter
    before = memory_kb("VmRSS")
    start = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - start
    return seconds, (memory_kb("VmHWM") - before) / 1024, result


def main() -> None:
    data_dir = sys.argv[1]
    embeddings = torch.from_numpy(np.load(os.path.join(data_dir, "embeddings.npy")))
    groups = torch.from_numpy(np.load(os.path.join(data_dir, "groups.npy")))
    dataset = [
        SimilarityGroupSample(obj=row, group=int(group))
        for row, group in zip(embeddings, groups, strict=True)
    ]
    dim = embeddings.shape[1]
    model = SimilarityModel(encoders=IdentityEncoder(dim), head=EmptyHead(dim))
    results = {}
    seconds, peak, value = measure(
        lambda: RetrievalRPrecision(Distance.COSINE).compute(embeddings, groups)
    )
    results["RetrievalRPrecision.compute"] = {
        "time_s": round(seconds, 3),
        "peak_mb": round(peak),
        "r_precision": float(value),
    }
    random.seed(0)
    evaluator = Evaluator(
        RetrievalRPrecision(Distance.COSINE),
        GroupSampler(encode_batch_size=1024, log_progress=False),
    )
    seconds, peak, value = measure(lambda: evaluator.evaluate(dataset, model))
    results["Evaluator+GroupSampler"] = {
        "time_s": round(seconds, 3),
        "peak_mb": round(peak),
        "r_precision": float(value["RetrievalRPrecision"]),
    }
    print(json.dumps(results))


if __name__ == "__main__":
    main()
