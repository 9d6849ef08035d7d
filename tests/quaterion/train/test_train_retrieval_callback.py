"""RetrievalMetricsCallback: exact whole-split metrics while training, as monitors, with and
without the cache, and under DDP (2 gloo processes, in retrieval_ddp_script.py)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint

import quaterion.train.callbacks.retrieval_callback as retrieval_callback
from quaterion import Quaterion
from quaterion.dataset import (
    GroupSimilarityDataLoader,
    PairsSimilarityDataLoader,
    SimilarityPairSample,
)
from quaterion.eval.retrieval import pair_retrieval_metrics, retrieval_metrics
from quaterion.loss import ContrastiveLoss, TripletLoss
from quaterion.train.cache import CacheConfig, CacheType
from quaterion.train.callbacks import RetrievalMetricsCallback

SCRIPT = Path(__file__).with_name("retrieval_ddp_script.py")
REPO_ROOT = Path(__file__).resolve().parents[3]


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


@pytest.mark.slow
def test_ddp_processes_rank_their_share_and_agree(tmp_path):
    path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    process = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert process.returncode == 0, process.stderr[-4000:]
    rank0, rank1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert rank0["world_size"] == 2
    # 45 samples: shards of 23 and 22 (+1 repeat, dropped); each ranks its own queries
    assert rank0["queries_ranked"] == [23, 23] and rank1["queries_ranked"] == [22, 22]
    assert rank0["candidates"] == rank1["candidates"] == [45, 45]
    assert rank0["logged"] == rank1["logged"]
    for name, value in rank0["expected"].items():
        assert rank0["logged"][f"{name}_validation"] == pytest.approx(value, abs=1e-6), name
