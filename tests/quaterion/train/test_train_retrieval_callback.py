"""RetrievalMetricsCallback: exact whole-split metrics while training, as monitors, with and
without the cache, and under DDP: 2 forked gloo processes, each fed its DistributedSampler
shard through the callback's hooks, and a real fit through Lightning's DDP launcher."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.distributed as dist
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint
from support import fork_ranks
from torch.utils.data import DistributedSampler

import quaterion.train.callbacks.retrieval_callback as retrieval_callback
from quaterion import Quaterion, TrainableModel
from quaterion.dataset import (
    GroupSimilarityDataLoader,
    PairsSimilarityDataLoader,
    SimilarityGroupSample,
    SimilarityPairSample,
)
from quaterion.eval.retrieval import pair_retrieval_metrics, retrieval_metrics
from quaterion.loss import ContrastiveLoss, TripletLoss
from quaterion.train.cache import CacheConfig, CacheType
from quaterion.train.callbacks import RetrievalMetricsCallback
from quaterion_models.encoders import Encoder
from quaterion_models.heads import LinearHead


@pytest.fixture
def cached_model(head_model):
    class CachedModel(head_model):
        def configure_caches(self):
            return CacheConfig(CacheType.CPU)

    return CachedModel


def group_loaders(clusters, to_group_samples, val_size=45):
    train = to_group_samples(*clusters(per_class=16))
    vectors, labels = clusters(per_class=16, data_seed=7)
    val = to_group_samples(vectors[:val_size], labels[:val_size])
    return (
        GroupSimilarityDataLoader(train, batch_size=16, shuffle=True),
        GroupSimilarityDataLoader(val, batch_size=8),
        vectors[:val_size],
        labels[:val_size],
    )


@pytest.mark.parametrize("cache", [False, True], ids=["encoders", "cache"])
def test_logged_metrics_equal_the_engine_on_the_whole_split(
    cache, head_model, cached_model, clusters, to_group_samples, fast_trainer
):
    torch.manual_seed(0)
    model = (cached_model if cache else head_model)(16, TripletLoss)
    train, val, vectors, labels = group_loaders(clusters, to_group_samples)
    callback = RetrievalMetricsCallback(k=(1, 3), distance="cosine")
    trainer = fast_trainer(max_epochs=2, callbacks=[callback])
    Quaterion.fit(model, trainer, train, val)
    expected = retrieval_metrics(model.model.encode(list(vectors), to_numpy=False), labels, (1, 3))
    logged = trainer.callback_metrics
    for name, value in expected.items():
        assert logged[f"{name}_validation"].item() == pytest.approx(value.item(), abs=1e-6), name


def test_pairs_and_metric_selection(head_model, fast_trainer):
    generator = torch.Generator().manual_seed(1)
    anchors = torch.randn(30, 16, generator=generator)
    others = anchors + 0.5 * torch.randn(30, 16, generator=generator)
    scores = [1.0] * 20 + [0.0] * 10
    samples = [
        SimilarityPairSample(obj_a=a, obj_b=b, score=s)
        for a, b, s in zip(anchors, others, scores, strict=True)
    ]
    model = head_model(16, ContrastiveLoss)
    callback = RetrievalMetricsCallback(k=2, metrics=["precision@2", "mrr"])
    trainer = fast_trainer(max_epochs=1, callbacks=[callback])
    loader = PairsSimilarityDataLoader(samples, batch_size=7)
    Quaterion.fit(model, trainer, loader, PairsSimilarityDataLoader(samples, batch_size=7))
    encoded = model.model.encode(list(anchors) + list(others), to_numpy=False)
    pairs = torch.stack([torch.arange(30), torch.arange(30, 60)], dim=1)
    expected = pair_retrieval_metrics(encoded, pairs, torch.tensor(scores), 2)
    logged = {k: v for k, v in trainer.callback_metrics.items() if k.endswith("_validation")}
    assert set(logged) == {"precision@2_validation", "mrr_validation"}
    for name in ("precision@2", "mrr"):
        assert logged[f"{name}_validation"].item() == pytest.approx(expected[name].item(), abs=1e-6)


def test_monitor_of_early_stopping_and_checkpoint_every_n_epochs(
    head_model, clusters, to_group_samples, fast_trainer, tmp_path, monkeypatch
):
    evaluated = []
    real = retrieval_callback.score_queries

    def recording(inputs, *args, **kwargs):
        evaluated.append(trainer.current_epoch)
        return real(inputs, *args, **kwargs)

    monkeypatch.setattr(retrieval_callback, "score_queries", recording)
    torch.manual_seed(0)
    train, val, _, _ = group_loaders(clusters, to_group_samples)
    # the checkpoint looks at the cadence the metric is computed at; early stopping tolerates
    # the epochs in between
    checkpoint = ModelCheckpoint(
        dirpath=tmp_path,
        monitor="r_precision_validation",
        mode="max",
        save_top_k=1,
        every_n_epochs=2,
    )
    stopping = EarlyStopping("map@r_validation", mode="max", patience=5, strict=False)
    callbacks = [RetrievalMetricsCallback(every_n_epochs=2), checkpoint, stopping]
    trainer = fast_trainer(max_epochs=4, enable_checkpointing=True, callbacks=callbacks)
    Quaterion.fit(head_model(16, TripletLoss), trainer, train, val)
    assert evaluated == [1, 3]
    assert 0 < checkpoint.best_model_score <= 1
    assert Path(checkpoint.best_model_path).exists()
    assert torch.isfinite(stopping.best_score)  # the monitor was found and compared


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="unknown metrics \\['precision@5'\\]"):
        RetrievalMetricsCallback(k=1, metrics=["precision@5"])
    with pytest.raises(ValueError, match="every_n_epochs must be a positive int"):
        RetrievalMetricsCallback(every_n_epochs=0)
    with pytest.raises(ValueError, match="Unrecognized distance name"):
        RetrievalMetricsCallback(distance="hamming")


class DdpModel(TrainableModel):
    """Frozen identity on 16-d vectors + a seeded linear head: the same in every process."""

    def configure_encoders(self):
        return FrozenVectors()

    def configure_head(self, input_embedding_size):
        torch.manual_seed(3)
        return LinearHead(input_embedding_size, output_size=8)

    def configure_loss(self):
        return TripletLoss()


class FrozenVectors(Encoder):
    @property
    def trainable(self):
        return False

    @property
    def embedding_size(self):
        return 16

    def get_collate_fn(self):
        return torch.stack

    def forward(self, batch):
        return batch


def ddp_samples(kind: str) -> list:
    """45 samples (shards of 23 and 22 + 1 repeat): groups, or pairs with a few score-0 ones."""
    generator = torch.Generator().manual_seed(11)
    groups = torch.randint(0, 5, (45,), generator=generator)
    vectors = torch.randn(5, 16, generator=generator)[groups] + torch.randn(
        45, 16, generator=generator
    )
    if kind == "groups":
        return [SimilarityGroupSample(v, int(g)) for v, g in zip(vectors, groups, strict=True)]
    others = vectors + 0.7 * torch.randn(45, 16, generator=generator)
    return [
        SimilarityPairSample(obj_a=a, obj_b=b, score=0.0 if i % 7 == 0 else 1.0)
        for i, (a, b) in enumerate(zip(vectors, others, strict=True))
    ]


def validate_shard(rank: int, port: int, kind: str, out_dir: str) -> None:
    """One process: its DistributedSampler shard (as Lightning shards a validation loader)
    through the callback's hooks, as a validation epoch runs them; writes what it logged."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    ranked = []
    real_score_queries = retrieval_callback.score_queries

    def recording(inputs, *args, **kwargs):
        ranked.append([len(inputs.queries), len(inputs.candidates)])
        return real_score_queries(inputs, *args, **kwargs)

    retrieval_callback.score_queries = recording
    samples = ddp_samples(kind)
    loader_class = GroupSimilarityDataLoader if kind == "groups" else PairsSimilarityDataLoader
    shard = DistributedSampler(range(len(samples)), num_replicas=2, rank=rank, shuffle=False)
    loader = loader_class(samples, batch_size=4, sampler=shard)
    model = DdpModel()
    model.setup_dataloader(loader)
    logged = {}
    module = SimpleNamespace(log=lambda name, value, **options: logged.update({name: float(value)}))
    trainer = SimpleNamespace(current_epoch=0, sanity_checking=False, val_dataloaders=loader)
    callback = RetrievalMetricsCallback(k=(1, 3))
    callback.on_validation_epoch_start(trainer, module)
    with torch.no_grad():
        for index, batch in enumerate(loader):
            outputs = {"embeddings": model.model(batch[0])}
            callback.on_validation_batch_end(trainer, module, outputs, batch, index)
    callback.on_validation_epoch_end(trainer, module)
    dist.destroy_process_group()
    path = Path(out_dir) / f"rank{rank}.json"
    path.with_suffix(".tmp").write_text(json.dumps({"ranked": ranked, "logged": logged}))
    path.with_suffix(".tmp").replace(path)


@pytest.mark.parametrize("kind", ["groups", "pairs"])
def test_ddp_processes_rank_their_share_and_agree(kind, tmp_path):
    run = lambda rank, port: validate_shard(rank, port, kind, str(tmp_path))  # noqa: E731
    assert fork_ranks(run) == [0, 0]
    rank0, rank1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))

    samples = ddp_samples(kind)
    model = DdpModel()
    if kind == "groups":
        embeddings = model.model.encode([s.obj for s in samples], to_numpy=False)
        expected = retrieval_metrics(embeddings, torch.tensor([s.group for s in samples]), (1, 3))
        # 45 samples: shards of 23 and 22 (+1 repeat, dropped); each ranks its own rows
        assert rank0["ranked"] == [[23, 45]] and rank1["ranked"] == [[22, 45]]
    else:
        objects = [s.obj_a for s in samples] + [s.obj_b for s in samples]
        embeddings = model.model.encode(objects, to_numpy=False)
        pairs = torch.stack([torch.arange(45), torch.arange(45, 90)], dim=1)
        scores = torch.tensor([s.score for s in samples])
        expected = pair_retrieval_metrics(embeddings, pairs, scores, (1, 3))
        assert rank0["ranked"] == [[46, 90]] and rank1["ranked"] == [[44, 90]]
    assert rank0["logged"] == rank1["logged"]
    assert set(rank0["logged"]) == {f"{name}_validation" for name in expected}
    for name, value in expected.items():
        assert rank0["logged"][f"{name}_validation"] == pytest.approx(value.item(), abs=1e-6)


LIGHTNING_DDP_SCRIPT = Path(__file__).with_name("ddp_retrieval_callback_script.py")


@pytest.mark.slow
def test_lightning_ddp_fit_ranks_each_share_and_logs_monitors(tmp_path):
    """Through Lightning's own launcher: ``Quaterion.fit`` with ``devices=2, strategy="ddp"``,
    the cache on and the callback every epoch (a script, which the launcher re-executes)."""
    root = Path(__file__).resolve().parents[3]
    path = os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, str(LIGHTNING_DDP_SCRIPT), str(tmp_path)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": path, "QUATERION_PROGRESS": "0"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert "terminate called" not in done.stderr  # process groups are torn down
    assert "sync_dist=True" not in done.stderr  # no warning about unsynchronised values
    rank0, rank1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert [rank0["world_size"], rank1["world_size"]] == [2, 2]
    script = load_module(LIGHTNING_DDP_SCRIPT)
    # every epoch each process ranked its own shard of the 45 queries against all 45 objects
    assert rank0["ranked"] == [[23, 45]] * script.EPOCHS
    assert rank1["ranked"] == [[22, 45]] * script.EPOCHS
    assert rank0["epochs"] == rank1["epochs"] and len(rank0["epochs"]) == script.EPOCHS
    # the last epoch's values equal one process ranking the whole split with the final model
    assert rank0["embeddings"] == rank1["embeddings"]
    _, labels = script.validation_split()
    expected = retrieval_metrics(torch.tensor(rank0["embeddings"]), labels, script.KS)
    last = rank0["epochs"][-1]
    assert set(last) == {f"{name}_validation" for name in expected}
    for name, value in expected.items():
        assert last[f"{name}_validation"] == pytest.approx(value.item(), abs=1e-6), name
    # the monitors found them on both processes
    for rank in (rank0, rank1):
        best = max(epoch["r_precision_validation"] for epoch in rank["epochs"])
        assert rank["checkpoint_best_score"] == pytest.approx(best)
        assert rank["stopping_best_score"] == pytest.approx(
            max(epoch["map@r_validation"] for epoch in rank["epochs"])
        )
    assert (tmp_path / "checkpoints" / rank0["checkpoint_file"]).exists()


def load_module(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
