"""Hidden states of a partly trainable encoder's frozen bottom in `save_dir`: written once,
reused by a rerun, refilled when the data or the bottom changes, split across DDP processes."""

import importlib.util
from pathlib import Path

import pytest
import torch
from support import PartlyTrainableModel, fork_ranks, hidden_state_texts

from quaterion.dataset import GroupSimilarityDataLoader, SimilarityGroupSample
from quaterion_models.encoders.extras.layer_split import LowerLayers

SCRIPT = Path(__file__).with_name("ddp_hidden_states_script.py")


@pytest.fixture
def calls(monkeypatch):
    """Objects the frozen bottom encodes, per forward call."""
    counted, forward = [], LowerLayers.forward

    def counting(self, batch):
        counted.append(len(batch["input_ids"]))
        return forward(self, batch)

    monkeypatch.setattr(LowerLayers, "forward", counting)
    return counted


def fill(path, save_dir, texts=None, **options):
    """The cache wrapper after filling the train split of `texts` (default: 16 texts)."""
    model = PartlyTrainableModel(path, save_dir=str(save_dir), **options)
    samples = [SimilarityGroupSample(obj=t, group=g) for t, g in texts or hidden_state_texts()]
    loader = GroupSimilarityDataLoader(samples, batch_size=4)
    model.setup_dataloader(loader)
    model.setup_cache(None, loader, None)
    return model.model.encoders["default"]


def test_a_rerun_reuses_the_stored_hidden_states(tiny_bert_3, tmp_path, calls):
    first = fill(tiny_bert_3, tmp_path, storage_dtype=torch.float16).ragged("train")
    assert sum(calls) == 16
    files = sorted(path.name for path in tmp_path.rglob("*") if path.is_file())
    assert files == ["train.json", "train.safetensors"]  # no temporary leftovers
    stored = next(tmp_path.rglob("train.safetensors")).stat().st_size
    assert first.nbytes <= stored <= first.nbytes + 1024  # values and offsets, a small header

    calls.clear()
    cached = fill(tiny_bert_3, tmp_path, storage_dtype=torch.float16)
    again = cached.ragged("train")
    assert calls == []  # nothing encoded
    assert again.values.dtype == torch.float16
    assert torch.equal(again.values, first.values) and torch.equal(again.offsets, first.offsets)
    with torch.no_grad():  # and the top computes from them as from freshly filled rows
        assert cached.embeddings("train").shape == (16, 32)


def test_changed_data_or_bottom_refill_and_trained_top_layers_do_not(tiny_bert_3, tmp_path,
                                                                     calls):  # fmt: skip
    fill(tiny_bert_3, tmp_path)
    calls.clear()
    fill(tiny_bert_3, tmp_path, texts=hidden_state_texts(17))
    assert sum(calls) == 17  # one more text: the data changed

    def shift(layer):
        def tweak(encoder):
            encoder.model.encoder.layer[layer].output.dense.bias.add_(0.5)

        return tweak

    fill(tiny_bert_3, tmp_path)
    calls.clear()
    fill(tiny_bert_3, tmp_path, tweak=shift(2))
    assert calls == []  # the trained top layer does not change what the bottom computed
    fill(tiny_bert_3, tmp_path, tweak=shift(0))
    assert sum(calls) == 16  # a changed bottom layer does


def test_a_damaged_store_is_rebuilt(tiny_bert_3, tmp_path, calls):
    first = fill(tiny_bert_3, tmp_path).ragged("train")
    stored = next(tmp_path.rglob("train.safetensors"))
    data = bytearray(stored.read_bytes())
    data[-8:] = bytes(8)  # the last offset zeroed
    stored.write_bytes(bytes(data))
    calls.clear()
    again = fill(tiny_bert_3, tmp_path).ragged("train")
    assert sum(calls) == 16
    assert torch.equal(again.offsets, first.offsets)


def test_two_processes_split_the_hidden_state_fill(tiny_bert_3, tmp_path, calls, monkeypatch):
    # forked, not spawned: the children share this process's imports (fresh interpreters
    # importing torch and transformers take minutes on a loaded machine)
    spec = importlib.util.spec_from_file_location(SCRIPT.stem, SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    monkeypatch.setenv("QUATERION_PROGRESS", "0")
    run = lambda rank, port: script.run(rank, str(tmp_path), str(port), str(tiny_bert_3))  # noqa: E731
    assert fork_ranks(run) == [0, 0]
    ranks = [torch.load(tmp_path / f"rank{rank}.pt") for rank in (0, 1)]
    expected = fill(tiny_bert_3, tmp_path / "single").ragged("train")  # one process: the oracle
    # 16 texts in fill batches of 4: batches 0 and 2 on rank 0, 1 and 3 on rank 1
    assert [ranks[rank]["fill"]["calls"] for rank in (0, 1)] == [8, 8]
    assert [ranks[rank]["rerun"]["calls"] for rank in (0, 1)] == [0, 0]  # from save_dir
    for rank in (0, 1):
        for attempt in ("fill", "rerun"):
            held = ranks[rank][attempt]
            assert torch.equal(held["offsets"], expected.offsets)
            assert torch.allclose(held["values"], expected.values, atol=1e-6)
