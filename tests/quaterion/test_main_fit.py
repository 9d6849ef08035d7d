"""Quaterion.fit / evaluate / trainer_defaults."""

import warnings

import pytest
import torch
from pytorch_lightning.callbacks import EarlyStopping, RichModelSummary

from quaterion import Quaterion
from quaterion.dataset import (
    GroupSimilarityDataLoader,
    PairsSimilarityDataLoader,
    SimilarityPairSample,
)
from quaterion.dataset.train_collator import TrainCollator
from quaterion.eval.attached_metric import AttachedMetric
from quaterion.eval.evaluator import Evaluator
from quaterion.eval.group import RetrievalRPrecision
from quaterion.eval.samplers.group_sampler import GroupSampler
from quaterion.loss import ContrastiveLoss, TripletLoss
from quaterion.main import EPOCHS_WITHOUT_VALIDATION
from quaterion.train.cache import CacheConfig, CacheType
from quaterion.train.callbacks import CleanupCallback, MetricsCallback
from quaterion.utils.progress_bar import QuaterionProgressBar


@pytest.fixture
def group_loader(clusters, to_group_samples):
    vectors, labels = clusters(per_class=4)
    return GroupSimilarityDataLoader(to_group_samples(vectors, labels), batch_size=8)


@pytest.fixture
def pairs_loader():
    g = torch.Generator().manual_seed(0)
    pairs = [SimilarityPairSample(torch.randn(16, generator=g), torch.randn(16, generator=g))]
    return PairsSimilarityDataLoader(pairs * 4, batch_size=2)


def test_group_loader_with_pairwise_loss_names_the_fix(head_model, group_loader):
    model = head_model(16, ContrastiveLoss)
    collate = group_loader.collate_fn
    with pytest.raises(TypeError) as error:
        Quaterion.fit(model, None, group_loader)
    assert str(error.value) == (
        "GroupSimilarityDataLoader needs a GroupLoss, got ContrastiveLoss; "
        "use e.g. TripletLoss, or PairsSimilarityDataLoader"
    )
    assert group_loader.collate_fn is collate  # nothing was set up before the check


def test_pairs_loader_with_group_loss_names_the_fix(head_model, pairs_loader, group_loader):
    with pytest.raises(
        TypeError,
        match="PairsSimilarityDataLoader needs a PairwiseLoss, got "
        "TripletLoss; use e.g. ContrastiveLoss",
    ):
        Quaterion.fit(head_model(16, TripletLoss), None, pairs_loader)
    with pytest.raises(TypeError, match="PairsSimilarityDataLoader needs a PairwiseLoss"):
        Quaterion.fit(head_model(16, TripletLoss), None, group_loader, pairs_loader)


def test_plain_dataloader_is_rejected(head_model):
    plain = torch.utils.data.DataLoader([1, 2, 3])
    with pytest.raises(TypeError, match="train_dataloader must be a PairsSimilarityDataLoader"):
        Quaterion.fit(head_model(16, TripletLoss), None, plain)


def test_default_trainer_without_validation_is_bounded(
    head_model, group_loader, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    model = head_model(16, TripletLoss, lr=0.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Quaterion.fit(model, None, group_loader)
    trainer = model.trainer
    assert trainer.max_epochs == EPOCHS_WITHOUT_VALIDATION
    assert trainer.current_epoch == EPOCHS_WITHOUT_VALIDATION
    assert not any(isinstance(callback, EarlyStopping) for callback in trainer.callbacks)
    assert isinstance(trainer.progress_bar_callback, QuaterionProgressBar)
    assert not [w for w in caught if "val_dataloader" in str(w.message)]


def test_default_trainer_with_validation_stops_early(
    head_model, group_loader, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    model = head_model(16, TripletLoss, lr=0.0)  # validation loss never improves
    Quaterion.fit(model, None, group_loader, group_loader)
    trainer = model.trainer
    assert trainer.max_epochs == -1
    assert isinstance(trainer.early_stopping_callback, EarlyStopping)
    assert trainer.current_epoch == 4  # best epoch + patience (3)
    assert trainer.should_stop


def test_fit_adds_callbacks_once_and_leaves_loaders_usable(head_model, group_loader, fast_trainer):
    model = head_model(16, TripletLoss)
    given = fast_trainer(max_epochs=1, callbacks=[CleanupCallback()])
    for trainer in (fast_trainer(max_epochs=1), given):
        Quaterion.fit(model, trainer, group_loader)
        for callback_type in (CleanupCallback, MetricsCallback):
            assert sum(isinstance(c, callback_type) for c in trainer.callbacks) == 1
    collate = group_loader.collate_fn
    assert isinstance(collate, TrainCollator)
    assert collate.pre_collate_fn == GroupSimilarityDataLoader.pre_collate_fn  # never nested
    features, targets = next(iter(group_loader))
    assert model.model(features).shape == (8, 8)


class CountingRPrecision(RetrievalRPrecision):
    resets = 0

    def reset(self):
        type(self).resets += 1
        super().reset()


def test_metrics_callback_resets_attached_metrics(head_model, group_loader, fast_trainer):
    metric = AttachedMetric("rrp", CountingRPrecision(), logger=False)
    model = head_model(16, TripletLoss, metrics=[metric])
    trainer = fast_trainer(max_epochs=2, num_sanity_val_steps=1)
    Quaterion.fit(model, trainer, group_loader, group_loader)
    # sanity check: validation epoch start / end, sanity end; then per epoch: train epoch
    # start / end, validation epoch start / end
    assert CountingRPrecision.resets == 3 + 2 * 4


def test_trainer_defaults(head_model, group_loader):
    defaults = Quaterion.trainer_defaults()
    progress, early_stopping, summary = defaults["callbacks"]
    assert isinstance(progress, QuaterionProgressBar)
    assert isinstance(early_stopping, EarlyStopping)
    assert early_stopping.monitor == "validation_loss"
    assert isinstance(summary, RichModelSummary)
    assert defaults["max_epochs"] == -1 and defaults["accelerator"] == "auto"
    assert defaults["devices"] == 1 and defaults["enable_model_summary"] is False
    assert "log_every_n_steps" not in defaults

    defaults = Quaterion.trainer_defaults(head_model(16, TripletLoss), group_loader)
    assert defaults["log_every_n_steps"] == 2  # capped by the number of batches
    assert "enable_checkpointing" not in defaults  # no cache configured

    class CachedModel(head_model):
        def configure_caches(self):
            return CacheConfig(CacheType.AUTO)

    defaults = Quaterion.trainer_defaults(CachedModel(16, TripletLoss))
    assert defaults["enable_checkpointing"] is False  # frozen + cached: only the head trains
    trainable = CachedModel(16, TripletLoss, trainable_encoder=True)
    assert "enable_checkpointing" not in Quaterion.trainer_defaults(trainable)


def test_evaluate_runs_the_evaluator(head_model, clusters, to_group_samples):
    vectors, labels = clusters(per_class=4)
    samples = to_group_samples(vectors, labels)
    model = head_model(16, TripletLoss).model
    evaluator = Evaluator({"rrp": RetrievalRPrecision()}, GroupSampler(log_progress=False))
    result = Quaterion.evaluate(evaluator, samples, model)
    expected = Evaluator({"rrp": RetrievalRPrecision()}, GroupSampler(log_progress=False))
    assert result.keys() == {"rrp"}
    torch.testing.assert_close(result["rrp"], expected.evaluate(samples, model)["rrp"])


def eval_mode_encoder_model(head_model, dim):
    """A HeadModel whose frozen encoder keeps itself in eval mode, as pre-trained encoders
    (transformers, EfficientNet) do so that their dropout never runs."""
    model = head_model(dim, TripletLoss)
    encoder = model.model.encoders["default"]
    encoder.train = lambda mode=True: torch.nn.Module.train(encoder, False)
    encoder.eval()
    return model


def test_frozen_encoders_in_eval_mode_raise_no_lightning_warning(
    head_model, group_loader, fast_trainer
):
    model = eval_mode_encoder_model(head_model, dim=16)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Quaterion.fit(model, fast_trainer(max_epochs=1), group_loader)
    assert not model.model.encoders["default"].training
    assert not [w for w in caught if "in eval mode" in str(w.message)]
