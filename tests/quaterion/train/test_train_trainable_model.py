"""TrainableModel: the seed's minimal example, hook order, steps, logging, loaders, servables."""

import warnings
from functools import partial
from pathlib import Path

import pytest
import torch
from torch.optim import Adam

from quaterion import Quaterion, TrainableModel
from quaterion.dataset import (
    GroupSimilarityDataLoader,
    PairsSimilarityDataLoader,
    SimilarityPairSample,
)
from quaterion.dataset.train_collator import TrainCollator
from quaterion.eval.attached_metric import AttachedMetric
from quaterion.eval.group import RetrievalRPrecision
from quaterion.eval.group.group_retrieval_metrics import GroupRetrievalMetrics
from quaterion.loss import ContrastiveLoss, GroupLoss, TripletLoss
from quaterion.train.cache import CacheConfig, CacheType
from quaterion.train.xbm import XbmConfig
from quaterion_models import SimilarityModel
from quaterion_models.encoders import Encoder
from quaterion_models.heads import EmptyHead, SequentialHead, SkipConnectionHead


class YourAwesomeEncoder(Encoder):
    """A small trainable encoder of 6-d vectors."""

    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(6, 4)

    @property
    def trainable(self):
        return True

    @property
    def embedding_size(self):
        return 4

    def forward(self, batch):
        return self.layer(batch)

    def save(self, output_path):
        pass

    @classmethod
    def load(cls, input_path):
        return cls()


class ExampleModel(TrainableModel):
    """The seed's Minimal Example, typos mended."""

    def __init__(self, lr=10e-5, *args, **kwargs):
        self.lr = lr
        super().__init__(*args, **kwargs)

    # backbone of the model
    def configure_encoders(self):
        return YourAwesomeEncoder()

    # top layer of the model
    def configure_head(self, input_embedding_size: int):
        return SkipConnectionHead(input_embedding_size)

    def configure_optimizers(self):
        return Adam(self.model.parameters(), lr=self.lr)

    def configure_loss(self):
        return ContrastiveLoss()


def random_pairs(n=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        SimilarityPairSample(torch.randn(6, generator=g), torch.randn(6, generator=g), score=i % 2)
        for i in range(n)
    ]


def test_seed_minimal_example_trains(fast_trainer):
    model = ExampleModel(lr=0.01)
    assert model.lr == 0.01
    assert isinstance(model.model, SimilarityModel) and isinstance(model.loss, ContrastiveLoss)
    assert model.cache_config.cache_type == CacheType.NONE and model.attached_metrics == []
    weights_before = model.model.encoders["default"].layer.weight.detach().clone()
    loader = PairsSimilarityDataLoader(random_pairs(), batch_size=8)
    Quaterion.fit(model, fast_trainer(max_epochs=1), loader)
    assert not torch.equal(weights_before, model.model.encoders["default"].layer.weight)


class RecordingModel(TrainableModel):
    """Records the order of the configure_* calls and what exists when each runs."""

    def __init__(self, metrics=None):
        self.calls = []
        self.metrics = metrics
        super().__init__()

    def configure_encoders(self):
        self.calls.append("configure_encoders")
        return YourAwesomeEncoder()

    def configure_caches(self):
        self.calls.append("configure_caches")
        return CacheConfig(CacheType.AUTO)

    def configure_head(self, input_embedding_size):
        self.calls.append(("configure_head", input_embedding_size))
        return EmptyHead(input_embedding_size)

    def configure_metrics(self):
        self.calls.append("configure_metrics")
        return self.metrics

    def configure_loss(self):
        self.calls.append(("configure_loss", isinstance(self.model, SimilarityModel)))
        return TripletLoss()

    def configure_xbm(self):
        self.calls.append("configure_xbm")
        return None


def test_init_calls_configure_hooks_in_documented_order():
    model = RecordingModel()
    assert model.calls == [
        "configure_encoders",
        "configure_caches",
        ("configure_head", 4),
        "configure_metrics",
        ("configure_loss", True),  # the SimilarityModel exists before the loss is configured
        "configure_xbm",
    ]
    assert model.cache_config == CacheConfig(CacheType.AUTO)
    assert model.attached_metrics == []  # configure_metrics returning None is fine
    single = AttachedMetric("rrp", RetrievalRPrecision())
    assert RecordingModel(metrics=single).attached_metrics == [single]


def test_steps_log_stage_and_metric_names_without_batch_size_warning(
    clusters, to_group_samples, head_model, fast_trainer
):
    vectors, labels = clusters(per_class=8)
    loader = GroupSimilarityDataLoader(to_group_samples(vectors, labels), batch_size=16)
    val_loader = GroupSimilarityDataLoader(to_group_samples(vectors, labels), batch_size=16)
    metric = AttachedMetric("rrp", RetrievalRPrecision(), prog_bar=True, on_epoch=True)
    model = head_model(vectors.shape[1], TripletLoss, metrics=[metric])
    trainer = fast_trainer(max_epochs=1, num_sanity_val_steps=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Quaterion.fit(model, trainer, loader, val_loader)
        names = set(trainer.logged_metrics) | set(trainer.callback_metrics)
        trainer.test(model, val_loader, verbose=False)  # loaders stay usable after fit
        names |= set(trainer.logged_metrics)
    assert not [w for w in caught if "infer the `batch_size`" in str(w.message)]
    assert {"train_loss", "validation_loss", "rrp_validation", "test_loss"} <= names
    assert "rrp_train" in names or "rrp_train_epoch" in names
    assert all(isinstance(name, str) and "TrainStage" not in name for name in names)


def test_pairs_fit_emits_no_batch_size_inference_warning(fast_trainer):
    model = ExampleModel(lr=0.01)
    loader = PairsSimilarityDataLoader(random_pairs(), batch_size=8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Quaterion.fit(model, fast_trainer(max_epochs=1), loader, loader)
    assert not [w for w in caught if "infer the `batch_size`" in str(w.message)]


def test_setup_dataloader_is_idempotent():
    model = ExampleModel()
    loader = PairsSimilarityDataLoader(random_pairs(4), batch_size=4)
    model.setup_dataloader(loader)
    model.setup_dataloader(loader)
    assert isinstance(loader.collate_fn, TrainCollator)
    assert loader.collate_fn.pre_collate_fn == PairsSimilarityDataLoader.pre_collate_fn
    features, targets = next(iter(loader))
    assert features["data"]["default"].shape == (8, 6) and len(features["meta"]) == 8
    assert model.model(features).shape == (8, 4)


def test_save_servable_round_trips(tmp_path, head_model, clusters):
    vectors, _ = clusters(per_class=2)
    model = head_model(vectors.shape[1], TripletLoss, trainable_encoder=True)
    model.save_servable(str(tmp_path / "servable"))
    loaded = SimilarityModel.load(str(tmp_path / "servable"))
    expected = model.model.encode(list(vectors), to_numpy=False)
    torch.testing.assert_close(loaded.encode(list(vectors), to_numpy=False), expected)


class NoXbmGroupLoss(GroupLoss):
    def forward(self, embeddings, groups):
        return embeddings.sum() * 0


@pytest.mark.parametrize(
    "loss_factory, message",
    [
        (ContrastiveLoss, "only with GroupLoss instances, got ContrastiveLoss"),
        (NoXbmGroupLoss, "NoXbmGroupLoss does not implement xbm_loss"),
    ],
)
def test_xbm_with_unsupported_loss_fails_when_the_fit_checks_the_model(
    head_model, loss_factory, message
):
    model = head_model(4, loss_factory, xbm=XbmConfig())  # building it is allowed
    with pytest.raises(TypeError, match=message):
        model.check_parts()


def test_xbm_accepts_group_losses_implementing_it(head_model):
    model = head_model(4, partial(TripletLoss, mining="hard"), xbm=XbmConfig(buffer_size=10))
    model.check_parts()
    assert model._xbm is not None and model._xbm.buffer.get()[0].shape == (0, 8)


def test_xbm_follows_a_loss_replaced_after_init(head_model):
    model = head_model(4, ContrastiveLoss, xbm=XbmConfig(buffer_size=10))
    model._loss = TripletLoss()  # a part made final after construction
    model.check_parts()
    assert model._xbm.loss is model.loss


class HookedExample(ExampleModel):
    """ExampleModel whose hooks return what a test's factories build (None: the default)."""

    def __init__(self, encoders=None, head=None, loss=None):
        self.factories = {"encoders": encoders, "head": head, "loss": loss}
        super().__init__(lr=0.01)

    def configure_encoders(self):
        make = self.factories["encoders"]
        return make() if make else super().configure_encoders()

    def configure_head(self, input_embedding_size):
        make = self.factories["head"]
        return make(input_embedding_size) if make else super().configure_head(input_embedding_size)

    def configure_loss(self):
        make = self.factories["loss"]
        return make() if make else super().configure_loss()


@pytest.mark.parametrize(
    "hooks, error, message",
    [
        ({"encoders": lambda: None}, TypeError, "configure_encoders must return .* got NoneType"),
        (
            {"encoders": lambda: {"a": YourAwesomeEncoder(), "b": torch.nn.Linear(2, 2)}},
            TypeError,
            "configure_encoders .* a dict holding Linear; subclass .*Encoder",
        ),
    ],
)
def test_wrong_encoders_are_refused_at_init(hooks, error, message):
    """The head's input size is computed from the encoders, so they are checked at once."""
    with pytest.raises(error, match=message):
        HookedExample(**hooks)


@pytest.mark.parametrize(
    "hooks, error, message",
    [
        ({"head": lambda size: None}, TypeError, "configure_head must return an EncoderHead"),
        (
            {"head": lambda size: EmptyHead(size + 1)},
            ValueError,
            "input_embedding_size=5, but the encoders output 4 .* pass input_embedding_size",
        ),
        ({"loss": torch.nn.MSELoss}, TypeError, "configure_loss must return a SimilarityLoss, got"),
    ],
)
def test_wrong_head_or_loss_is_refused_when_a_fit_starts(hooks, error, message):
    model = HookedExample(**hooks)  # the original let such a model be built, and so do we
    loader = PairsSimilarityDataLoader(random_pairs(8), batch_size=4)
    with pytest.raises(error, match=message):
        Quaterion.fit(model, None, loader)


def test_parts_set_after_init_are_what_the_fit_checks_and_trains(fast_trainer):
    model = HookedExample(head=lambda size: None, loss=lambda: None)
    model.model.head = EmptyHead(4)
    model._loss = ContrastiveLoss()
    trainer = fast_trainer()
    Quaterion.fit(model, trainer, PairsSimilarityDataLoader(random_pairs(8), batch_size=4))
    assert trainer.global_step == 2


def test_heads_without_an_input_size_are_accepted():
    head = SequentialHead(torch.nn.Linear(4, 3), output_size=3)
    assert HookedExample(head=lambda size: head).model.head is head


class NanEncoder(YourAwesomeEncoder):
    def forward(self, batch):
        return torch.full((len(batch), 4), float("nan"))


class InfHead(EmptyHead):
    def transform(self, input_vectors):
        return torch.full_like(input_vectors, float("inf"))


class NanLoss(GroupLoss):
    def forward(self, embeddings, groups):
        return embeddings.sum() * float("nan")


def _first_batch(model, loader_cls=PairsSimilarityDataLoader, samples=None):
    loader = loader_cls(samples or random_pairs(8), batch_size=4)
    model.setup_dataloader(loader)
    return next(iter(loader))


@pytest.mark.parametrize(
    "hooks, step, message",
    [
        (
            {"encoders": NanEncoder},
            "training_step",
            r"NaN embeddings in train batch 3, .*"
            r"encoder 'default' \(NanEncoder\)",
        ),
        ({"head": InfHead}, "validation_step", "infinite embeddings in validation batch 3, .*head"),
    ],
)
def test_non_finite_embeddings_name_stage_batch_and_culprit(hooks, step, message):
    model = HookedExample(**hooks)
    with pytest.raises(ValueError, match=message):
        getattr(model, step)(_first_batch(model), 3)


def test_non_finite_loss_of_finite_embeddings_blames_the_loss(clusters, to_group_samples):
    vectors, labels = clusters(per_class=2)
    model = HookedExample(loss=NanLoss)
    batch = _first_batch(model, GroupSimilarityDataLoader, to_group_samples(vectors[:, :6], labels))
    with pytest.raises(ValueError, match="loss is NaN or infinite in test batch 0 .*finite"):
        model.test_step(batch, 0)


@pytest.mark.parametrize("every", [3, 0])  # 0: Lightning's "never write to the loggers"
def test_train_loss_is_logged_at_the_logger_cadence_and_on_each_epoch_last_batch(
    every, clusters, to_group_samples, head_model, fast_trainer, monkeypatch, tmp_path
):
    from pytorch_lightning.loggers import CSVLogger

    vectors, labels = clusters(per_class=14)
    loader = GroupSimilarityDataLoader(to_group_samples(vectors, labels), batch_size=4)
    model = head_model(vectors.shape[1], TripletLoss)
    logger = CSVLogger(str(tmp_path), name="log")
    trainer = fast_trainer(max_epochs=2, log_every_n_steps=every, logger=logger)
    logged_at = []  # global step of each `train_loss` log call
    original_log = model.log

    def recording_log(name, *args, **kwargs):
        if name == "train_loss":
            logged_at.append(trainer.global_step)
        return original_log(name, *args, **kwargs)

    monkeypatch.setattr(model, "log", recording_log)
    Quaterion.fit(model, trainer, loader)
    per_epoch = len(loader)
    assert per_epoch % 3 != 0 and trainer.global_step == 2 * per_epoch
    last_batches = [step for step in range(2 * per_epoch) if (step + 1) % per_epoch == 0]
    cadence = [step for step in range(2 * per_epoch) if every and (step + 1) % every == 0]
    assert logged_at == sorted(set(last_batches) | set(cadence))
    assert "train_loss" in trainer.callback_metrics  # epoch-end callbacks see the last value
    metrics_file = Path(logger.log_dir) / "metrics.csv"
    written = metrics_file.read_text().count("\n") - 1 if metrics_file.exists() else 0
    assert written == len(cadence)  # the loggers get exactly Lightning's cadence


def test_attached_metric_reporting_several_values_logs_each_per_stage(
    clusters, to_group_samples, head_model, fast_trainer
):
    vectors, labels = clusters(per_class=8)
    loader = GroupSimilarityDataLoader(to_group_samples(vectors, labels), batch_size=16)
    val_loader = GroupSimilarityDataLoader(to_group_samples(vectors, labels), batch_size=16)
    metric = AttachedMetric("ret", GroupRetrievalMetrics(k=1), on_epoch=True)
    model = head_model(vectors.shape[1], TripletLoss, metrics=[metric])
    trainer = fast_trainer(max_epochs=1, num_sanity_val_steps=0)
    Quaterion.fit(model, trainer, loader, val_loader)
    names = set(trainer.callback_metrics)
    assert {"ret_precision@1_validation", "ret_r_precision_validation"} <= names
    assert any(name.startswith("ret_map@r_train") for name in names)
