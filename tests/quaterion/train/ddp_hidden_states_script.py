"""Two Gloo processes fill one cache of hidden states together; `run` is forked by
test_cache_hidden_states.py (not collected), or `python ddp_hidden_states_script.py OUT_DIR PORT
MODEL_PATH` spawns both.

Ranks 0 and 1 each set up the
cache of a partly trainable `HuggingFaceEncoder(MODEL_PATH, trainable_layers=1)` over the same
texts twice with one `save_dir` (rank 0 writes it), and write `OUT_DIR/rank<r>.pt`: how many
objects their frozen bottom encoded in each run, and the ragged rows they hold after each.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests/ (support helpers)

from support import PartlyTrainableModel, hidden_state_texts  # noqa: E402

from quaterion.dataset import GroupSimilarityDataLoader, SimilarityGroupSample  # noqa: E402
from quaterion_models.encoders.extras.layer_split import LowerLayers  # noqa: E402

CALLS: list[int] = []  # objects per forward of the frozen bottom, in this process


def run(rank: int, out_dir: str, port: str, model_path: str) -> None:
    torch.set_num_threads(1)
    forward = LowerLayers.forward

    def counted(self, batch):
        CALLS.append(len(batch["input_ids"]))
        return forward(self, batch)

    LowerLayers.forward = counted
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    result = {}
    for attempt in ("fill", "rerun"):
        CALLS.clear()
        model = PartlyTrainableModel(model_path, save_dir=str(Path(out_dir) / "cache"))
        samples = [SimilarityGroupSample(obj=t, group=g) for t, g in hidden_state_texts()]
        loader = GroupSimilarityDataLoader(samples, batch_size=4)
        model.setup_dataloader(loader)
        model.setup_cache(None, loader, None)
        ragged = model.model.encoders["default"].ragged("train")
        result[attempt] = {"calls": sum(CALLS), "values": ragged.values.clone(),
                           "offsets": ragged.offsets.clone()}  # fmt: skip
        dist.barrier()  # rank 0 has written the store before anyone reruns
    torch.save(result, Path(out_dir) / f"rank{rank}.pt")
    dist.destroy_process_group()


if __name__ == "__main__":
    mp.spawn(run, args=(sys.argv[1], sys.argv[2], sys.argv[3]), nprocs=2)
