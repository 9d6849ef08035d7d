"""`CacheConfig.save_dir`: stored rows are reused only while encoder and data are unchanged and
the files check out; anything else is rebuilt, with a log line saying why."""

import logging
from pathlib import Path

import pytest
import torch
from support import HeadModel, VectorEncoder, group_samples, make_clusters

from quaterion.dataset import GroupSimilarityDataLoader
from quaterion.loss import TripletLoss
from quaterion.train.cache import CacheConfig, CacheType
from quaterion.train.cache import store as store_module

DIM = 4


class ProjectionEncoder(VectorEncoder):
    """Frozen random projection (weights set by `seed`); counts the records it encodes."""

    def __init__(self, seed: int):
        super().__init__(DIM)
        weights = torch.randn(DIM, DIM, generator=torch.Generator().manual_seed(seed))
        self.weights = torch.nn.Parameter(weights, requires_grad=False)
        self.calls = 0

    def forward(self, batch):
        self.calls += len(batch)
        return batch @ self.weights


class StoredModel(HeadModel):
    def __init__(self, save_dir, seed=0):
        self.save_dir, self.seed = save_dir, seed
        super().__init__(DIM, TripletLoss)

    def configure_encoders(self):
        return ProjectionEncoder(self.seed)

    def configure_caches(self):
        return CacheConfig(CacheType.CPU, save_dir=str(self.save_dir))


def data(shift=0.0):
    vectors, labels = make_clusters(n_classes=2, per_class=6, dim=DIM)
    vectors = vectors.clone()
    vectors[8] += shift
    return vectors, labels


def run(save_dir, seed=0, vectors_labels=None):
    """Set up the cache for 12 training and 4 validation samples; returns the model."""
    vectors, labels = vectors_labels or data()
    model = StoredModel(save_dir, seed)
    train = GroupSimilarityDataLoader(group_samples(vectors, labels), batch_size=4)
    val = GroupSimilarityDataLoader(group_samples(vectors[:4], labels[:4]), batch_size=4)
    for loader in (train, val):
        model.setup_dataloader(loader)
    model.setup_cache(None, train, val)
    return model


def expected_rows(model, vectors):
    weights = model.model.encoders["default"].wrapped_encoder.weights
    return torch.cat([vectors, vectors[:4]]) @ weights  # train rows, then validation rows


def test_second_run_reuses_the_stored_rows(tmp_path, caplog):
    first = run(tmp_path)
    assert first.model.encoders["default"].wrapped_encoder.calls == 16
    with caplog.at_level(logging.INFO):
        second = run(tmp_path)
    encoder = second.model.encoders["default"]
    assert encoder.wrapped_encoder.calls == 0
    assert torch.equal(encoder.rows(), first.model.encoders["default"].rows())
    assert "Reusing the cache of encoder 'default' (train)" in caplog.text
    assert sorted(p.name for p in (tmp_path / "default").iterdir()) == [
        "train.json", "train.safetensors", "val.json", "val.safetensors",
    ]  # fmt: skip


def test_changed_encoder_weights_rebuild_the_cache(tmp_path, caplog):
    run(tmp_path, seed=0)
    with caplog.at_level(logging.INFO):
        model = run(tmp_path, seed=1)
    encoder = model.model.encoders["default"]
    assert encoder.wrapped_encoder.calls == 16
    assert "the encoder changed (weights or configuration)" in caplog.text
    assert torch.allclose(encoder.rows(), expected_rows(model, data()[0]))
    assert run(tmp_path, seed=1).model.encoders["default"].wrapped_encoder.calls == 0


def test_changed_data_rebuilds_the_changed_split_only(tmp_path, caplog):
    run(tmp_path)
    changed = data(shift=0.5)  # sample 8 is in the training split only
    with caplog.at_level(logging.INFO):
        model = run(tmp_path, vectors_labels=changed)
    encoder = model.model.encoders["default"]
    assert encoder.wrapped_encoder.calls == 12
    assert "'default' (train): the data changed" in caplog.text
    assert torch.allclose(encoder.rows(), expected_rows(model, changed[0]))

    vectors, labels = data()
    labels = labels.clone()
    labels[8] = 1 - labels[8]  # same objects, another group: also a change
    relabelled = run(tmp_path, vectors_labels=(vectors, labels))
    assert relabelled.model.encoders["default"].wrapped_encoder.calls == 12


def flip_bytes(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    raw[-8:] = bytes(255 - b for b in raw[-8:])  # the last row's bytes; size unchanged
    path.write_bytes(bytes(raw))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-20])


def garble_manifest(path: Path) -> None:
    path.with_suffix(".json").write_text("{not json")


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (flip_bytes, "corrupted (checksum mismatch)"),
        (truncate, "Rebuilding the cache of encoder 'default' (train): Corrupted"),
        (garble_manifest, "unreadable manifest"),
    ],
)
def test_damaged_cache_files_are_detected_and_rebuilt(tmp_path, caplog, damage, reason):
    run(tmp_path)
    damage(tmp_path / "default" / "train.safetensors")
    with caplog.at_level(logging.INFO):
        model = run(tmp_path)
    encoder = model.model.encoders["default"]
    assert reason in caplog.text
    assert encoder.wrapped_encoder.calls == 12  # the train split only
    assert torch.allclose(encoder.rows(), expected_rows(model, data()[0]))
    assert run(tmp_path).model.encoders["default"].wrapped_encoder.calls == 0  # rewritten


def test_interrupted_write_leaves_nothing_that_looks_complete(tmp_path, monkeypatch):
    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(store_module, "save_tensors_atomic", crash)
    with pytest.raises(OSError, match="disk full"):
        run(tmp_path)
    monkeypatch.undo()
    assert not list(tmp_path.rglob("*.json")) and not list(tmp_path.rglob("*.safetensors"))
    assert run(tmp_path).model.encoders["default"].wrapped_encoder.calls == 16


def test_unusable_save_dir_fails_before_the_fill(tmp_path):
    taken = tmp_path / "taken"
    taken.write_text("a file")
    for save_dir, error, message in (
        (taken, NotADirectoryError, "CacheConfig.save_dir .*taken is a file"),
        (taken / "cache", NotADirectoryError, "cannot be created or is not writable"),
    ):
        model = StoredModel(save_dir)
        loader = GroupSimilarityDataLoader(group_samples(*data()), batch_size=4)
        model.setup_dataloader(loader)
        with pytest.raises(error, match=message):
            model.setup_cache(None, loader, None)
        assert model.model.encoders["default"].calls == 0


class WideEncoder(VectorEncoder):
    """Frozen: a 1-d record `x` -> `x * [1, ..., width]` (a large embedding from a tiny input)."""

    def __init__(self, width: int):
        super().__init__(width)
        self.scale = torch.nn.Parameter(torch.arange(1.0, width + 1), requires_grad=False)

    def forward(self, batch):
        return batch[:, :1] * self.scale


class WideModel(HeadModel):
    def __init__(self, save_dir, width, storage_dtype=None):
        self.save_dir, self.width, self.storage_dtype = save_dir, width, storage_dtype
        super().__init__(width, TripletLoss)

    def configure_encoders(self):
        return WideEncoder(self.width)

    def configure_caches(self):
        return CacheConfig(CacheType.CPU, save_dir=str(self.save_dir), batch_size=4096,
                           storage_dtype=self.storage_dtype)  # fmt: skip


def wide_loader(count):
    samples = group_samples(torch.rand(count, 1, generator=torch.Generator().manual_seed(0)),
                            torch.arange(count) % 7)  # fmt: skip
    return GroupSimilarityDataLoader(samples, batch_size=256, shuffle=True)


def rss_anon_mb() -> float:
    status = Path("/proc/self/status").read_text()
    return (
        int(next(line for line in status.splitlines() if line.startswith("RssAnon:")).split()[1])
        / 1024
    )


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_stored_cache_trains_memory_mapped_outside_anonymous_memory(tmp_path):
    # 25,000 rows x 2,048 float32 = 205 MB on disk; reopening it must not copy it into RAM
    count, width = 25_000, 2048
    loader = wide_loader(count)
    first = WideModel(tmp_path, width)
    first.setup_cache(None, loader, None)
    expected = first.model.encoders["default"].embeddings("train")[:5].clone()
    del first
    before = rss_anon_mb()
    model = WideModel(tmp_path, width)
    train, _ = model.setup_cache(None, loader, None)
    encoder = model.model.encoders["default"]
    for features, _ in train:  # an epoch of cached rows: every row read once
        encoder(features["data"]["default"])
    grown = rss_anon_mb() - before
    print(f"RssAnon grew {grown:.1f} MB for a {count * width * 4 / 2**20:.0f} MB stored cache")
    assert grown < 60
    base = rss_anon_mb()
    in_ram = encoder.rows("train").clone()  # the same rows in RAM: the measure sees them
    # at least half the copy shows (pages the allocator freed earlier may be reused in place)
    assert rss_anon_mb() - base > count * width * 4 / 2**20 / 2 and in_ram.shape == (count, width)
    assert torch.equal(encoder.embeddings("train")[:5], expected)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_storage_halves_the_rows_and_reads_back_as_float32(tmp_path, dtype):
    loader = wide_loader(64)
    model = WideModel(tmp_path, 8, storage_dtype=dtype)
    train, _ = model.setup_cache(None, loader, None)
    encoder = model.model.encoders["default"]
    assert encoder.rows().dtype == dtype
    rows = next(iter(train))[0]["data"]["default"]
    embeddings = encoder(rows)
    assert embeddings.dtype == torch.float32
    objects = torch.stack([loader.dataset[i][1].obj for i in range(64)])
    exact = encoder.wrapped_encoder(objects)[rows]  # a sequential group fill: row = object id
    assert torch.allclose(embeddings, exact, rtol=1e-2)
    reopened = WideModel(tmp_path, 8, storage_dtype=dtype)
    reopened.setup_cache(None, loader, None)
    assert torch.equal(reopened.model.encoders["default"].rows(), encoder.rows())
    assert (tmp_path / "default" / "train.safetensors").stat().st_size < 64 * 8 * 4
