"""Cache set-up: which encoders get cached, what the fit loaders yield, and that cached batches
give the same embeddings as the plain model."""

import pytest
import pytorch_lightning as pl
import torch
from support import VectorEncoder, group_samples, make_clusters
from torch import Tensor

from quaterion import Quaterion, TrainableModel
from quaterion.dataset import (
    GroupSimilarityDataLoader,
    PairsSimilarityDataLoader,
    SimilarityPairSample,
)
from quaterion.dataset.full_cache_loader import CachedBatches
from quaterion.loss import ContrastiveLoss, TripletLoss
from quaterion.train.cache import CacheConfig, CacheEncoder, CacheType, InMemoryCacheEncoder
from quaterion.train.cache.cache_train_collator import CacheTrainCollator
from quaterion_models.encoders import Encoder
from quaterion_models.heads import GatedHead, LinearHead

WORDS = ["cat", "dog", "cow", "owl", "bee", "ant", "elk", "fox", "yak", "emu", "gnu", "rat"]
# 8 pairs; "cat", "dog" and "owl" come back, so custom keys see duplicates
PAIRS = [
    ("cat", "dog", 1.0), ("cow", "owl", 0.0), ("bee", "ant", 1.0), ("elk", "fox", 0.0),
    ("yak", "emu", 1.0), ("gnu", "rat", 0.0), ("cat", "owl", 1.0), ("dog", "cow", 0.0),
]  # fmt: skip


class WordEncoder(Encoder):
    """Frozen 6-d embedding per word (a fixed table); counts the records it encodes."""

    def __init__(self):
        super().__init__()
        table = torch.eye(6).repeat(2, 1) * torch.linspace(1.0, 2.0, 12).unsqueeze(1)
        self.table = torch.nn.Parameter(table + 0.05, requires_grad=False)  # [12, 6]
        self.encoded = 0

    @property
    def trainable(self) -> bool:
        return False

    @property
    def embedding_size(self) -> int:
        return 6

    def get_collate_fn(self):
        return words_to_ids

    @classmethod
    def extract_meta(cls, batch):
        return [{"word": word} for word in batch]

    def forward(self, batch: Tensor) -> Tensor:
        self.encoded += len(batch)
        return self.table[batch]

    def save(self, output_path: str) -> None:
        pass

    @classmethod
    def load(cls, input_path: str) -> "WordEncoder":
        return cls()


def words_to_ids(words):
    return torch.tensor([WORDS.index(word) for word in words])


class WordModel(TrainableModel):
    def __init__(self, cache_config, encoders=None):
        self.cache, self.encoders_factory = cache_config, encoders or WordEncoder
        super().__init__()

    def configure_encoders(self):
        return self.encoders_factory()

    def configure_caches(self):
        return self.cache

    def configure_head(self, input_embedding_size):
        return GatedHead(input_embedding_size)

    def configure_loss(self):
        return ContrastiveLoss()

    def configure_optimizers(self):
        return torch.optim.Adam(self.model.parameters(), lr=0.01)


def pair_loader(**kwargs):
    samples = [SimilarityPairSample(a, b, score=score) for a, b, score in PAIRS]
    return PairsSimilarityDataLoader(samples, batch_size=3, **kwargs)


def set_up(model, loader, val_loader=None, trainer=None):
    for each in (loader, val_loader):
        if each is not None:
            model.setup_dataloader(each)
    return model.setup_cache(trainer, loader, val_loader)


def test_default_config_caches_every_row_and_matches_the_plain_model():
    model = WordModel(CacheConfig())
    plain_batch = None
    loader = pair_loader()
    model.setup_dataloader(loader)
    plain_batch = next(iter(loader))
    plain = model.model(plain_batch[0])

    train, val = model.setup_cache(None, loader, None)

    encoder = model.model.encoders["default"]
    assert isinstance(encoder, InMemoryCacheEncoder) and encoder.num_rows == 16
    assert val is None and isinstance(train.dataset, CachedBatches)
    features, targets = next(iter(train))
    rows = features["data"]["default"]
    # rows in fill order (one fill batch: the 8 obj_a, then the 8 obj_b) of objects 0, 2, 4, 1, 3, 5
    assert rows.dtype == torch.long and rows.tolist() == [0, 1, 2, 8, 9, 10]
    assert len(features["meta"]) == 6
    assert list(features["meta"]) == plain_batch[0]["meta"]
    for name, value in plain_batch[1].items():
        assert torch.equal(targets[name], value)
    assert (model.model(features) - plain).abs().sum() < 1e-4


def test_cache_wrappers_are_removed_and_the_loader_still_works():
    model = WordModel(CacheConfig())
    loader = pair_loader()
    set_up(model, loader)
    model.unwrap_cache()
    assert isinstance(model.model.encoders["default"], WordEncoder)
    features, _ = next(iter(loader))  # the given loader was not changed
    assert features["data"]["default"].tolist() == [0, 2, 4, 1, 3, 5]


def test_full_cache_batches_follow_the_loader_settings():
    # 10 groups samples, batch 4: 3 batches, 2 with drop_last; shuffle permutes every epoch
    vectors, labels = make_clusters(n_classes=2, per_class=5, dim=4)
    samples = group_samples(vectors, labels)
    model_factory = lambda: WordModel(CacheConfig(), encoders=lambda: VectorEncoder(4))  # noqa: E731
    for kwargs, sizes in (({}, [4, 4, 2]), ({"drop_last": True}, [4, 4])):
        train, _ = set_up(
            model_factory(), GroupSimilarityDataLoader(samples, batch_size=4, **kwargs)
        )
        assert [len(targets["groups"]) for _, targets in train] == sizes
        assert len(train) == len(sizes)
    train, _ = set_up(
        model_factory(), GroupSimilarityDataLoader(samples, batch_size=4, shuffle=True)
    )
    torch.manual_seed(0)
    epochs = [torch.cat([features["data"]["default"] for features, _ in train]) for _ in range(2)]
    for rows in epochs:
        assert sorted(rows.tolist()) == list(range(10))
    assert epochs[0].tolist() != epochs[1].tolist()
    for features, targets in train:  # rows and targets stay aligned under shuffling
        assert torch.equal(targets["groups"], labels[features["data"]["default"]])


class LockableSamples(torch.utils.data.Dataset):
    """A data set that refuses reads once locked."""

    def __init__(self, samples):
        self.samples, self.locked = samples, False

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
        if self.locked:
            raise RuntimeError("the data set was read after the cache was filled")
        return self.samples[index]


def test_full_cache_fit_never_reads_the_data_set(fast_trainer):
    vectors, labels = make_clusters(n_classes=3, per_class=8, dim=4)
    train_data = LockableSamples(group_samples(vectors, labels))
    val_data = LockableSamples(group_samples(vectors[:12], labels[:12]))
    model = WordModel(CacheConfig(), encoders=lambda: VectorEncoder(4))
    model._loss = TripletLoss()
    trainer = fast_trainer(max_epochs=2)
    train, val = set_up(
        model,
        GroupSimilarityDataLoader(train_data, batch_size=6, shuffle=True),
        GroupSimilarityDataLoader(val_data, batch_size=6),
        trainer,
    )
    train_data.locked = val_data.locked = True
    trainer.fit(model, train, val)
    assert trainer.current_epoch == 2 and trainer.global_step == 8


def test_mixed_model_caches_only_frozen_encoders_and_matches_the_plain_model():
    encoders = lambda: {"frozen": VectorEncoder(4), "tuned": VectorEncoder(4, trainable=True)}  # noqa: E731
    model = WordModel(CacheConfig(), encoders=encoders)
    vectors, labels = make_clusters(n_classes=2, per_class=4, dim=4)
    loader = GroupSimilarityDataLoader(group_samples(vectors, labels), batch_size=8)
    val_loader = GroupSimilarityDataLoader(group_samples(vectors[:4], labels[:4]), batch_size=4)
    model.setup_dataloader(loader)
    plain = model.model(next(iter(loader))[0])

    train, val = set_up(model, loader, val_loader)

    assert isinstance(model.model.encoders["frozen"], InMemoryCacheEncoder)
    assert not isinstance(model.model.encoders["tuned"], CacheEncoder)
    assert isinstance(train.collate_fn, CacheTrainCollator) and train is not loader
    features, _ = next(iter(train))
    assert features["data"]["frozen"].tolist() == list(range(8))
    assert torch.equal(features["data"]["tuned"], vectors)
    assert torch.allclose(model.model(features), plain)
    val_features, _ = next(iter(val))  # validation rows follow the 8 training rows
    assert val_features["data"]["frozen"].tolist() == [8, 9, 10, 11]
    assert torch.allclose(
        model.model.encoders["frozen"](val_features["data"]["frozen"]), vectors[:4]
    )


def test_custom_keys_share_rows_between_duplicates_and_match_the_plain_model():
    model = WordModel(CacheConfig(key_extractors=lambda word: word))
    loader = pair_loader()
    model.setup_dataloader(loader)
    plain = [model.model(features) for features, _ in loader]

    train, _ = set_up(model, loader)

    assert model.model.encoders["default"].num_rows == len(WORDS)  # 16 objects, 12 words
    cached = [model.model(features) for features, _ in train]
    for ours, theirs in zip(cached, plain, strict=True):
        assert torch.allclose(ours, theirs)


def test_cache_with_loader_workers(fast_trainer):
    vectors, labels = make_clusters(n_classes=3, per_class=8, dim=4)
    samples = group_samples(vectors, labels)
    for encoders in (
        lambda: VectorEncoder(4),  # full cache
        lambda: {"frozen": VectorEncoder(4), "tuned": VectorEncoder(4, trainable=True)},
    ):
        model = WordModel(CacheConfig(num_workers=2), encoders=encoders)
        model._loss = TripletLoss()
        loader = GroupSimilarityDataLoader(samples, batch_size=6, shuffle=True, num_workers=2)
        trainer = fast_trainer(max_epochs=2)
        Quaterion.fit(model, trainer, loader)
        assert trainer.global_step == 8


def test_gpu_cache_without_cuda_fails_before_any_work(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    model = WordModel(CacheConfig(mapping={"default": CacheType.GPU}))
    loader = pair_loader()
    with pytest.raises(ValueError, match="CacheType.GPU was chosen for encoder 'default'.*CUDA"):
        set_up(model, loader)
    assert model.model.encoders["default"].encoded == 0


def test_none_in_mapping_disables_the_cache_of_that_encoder():
    model = WordModel(CacheConfig(CacheType.AUTO, mapping={"default": CacheType.NONE}))
    loader = pair_loader()
    assert set_up(model, loader) == (loader, None)
    assert isinstance(model.model.encoders["default"], WordEncoder)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (CacheConfig(mapping={"tuned": CacheType.CPU}), "encoder 'tuned': it is trainable"),
        (CacheConfig(mapping={"frozen": "disk"}), "Unknown cache type 'disk'.*'cpu'"),
        (CacheConfig(cache_type=None), "cache_type or mapping have to be set"),
        (CacheConfig(key_extractors={"nope": str}), r"key_extractors names unknown.*\['nope'\]"),
    ],
)
def test_bad_cache_configs_name_the_problem(config, message):
    encoders = lambda: {"frozen": VectorEncoder(4), "tuned": VectorEncoder(4, trainable=True)}  # noqa: E731
    model = WordModel(config, encoders=encoders)
    vectors, labels = make_clusters(n_classes=2, per_class=2, dim=4)
    with pytest.raises(ValueError, match=message):
        set_up(model, GroupSimilarityDataLoader(group_samples(vectors, labels), batch_size=2))


def test_mapping_naming_an_unknown_encoder_warns_and_caches_the_rest():
    """Code written for the original (its cache tutorial) names encoders the model lacks."""
    encoders = lambda: {"frozen": VectorEncoder(4), "other": VectorEncoder(4)}  # noqa: E731
    mapping = {"frozen": CacheType.CPU, "nope": CacheType.CPU, "gone": "cpu"}
    config = CacheConfig(cache_type=None, mapping=mapping)
    model = WordModel(config, encoders=encoders)
    vectors, labels = make_clusters(n_classes=2, per_class=2, dim=4)
    loader = GroupSimilarityDataLoader(group_samples(vectors, labels), batch_size=2)
    with pytest.warns(
        UserWarning, match=r"unknown encoders \['gone', 'nope'\].*\['frozen', 'other'\]"
    ):
        set_up(model, loader)
    assert isinstance(model.model.encoders["frozen"], InMemoryCacheEncoder)
    assert not isinstance(model.model.encoders["other"], CacheEncoder)


def test_cache_encoder_contract():
    with pytest.raises(ValueError, match="Trainable encoder can't be cached"):
        InMemoryCacheEncoder(VectorEncoder(4, trainable=True))
    with pytest.raises(ValueError, match="does not support loading"):
        InMemoryCacheEncoder.load("anywhere")
    encoder = InMemoryCacheEncoder(VectorEncoder(4), CacheType.CPU)
    assert not encoder.is_filled and not encoder.trainable and encoder.embedding_size == 4
    assert encoder.cache_type is CacheType.CPU
    with pytest.raises(RuntimeError, match="cache of this encoder is empty"):
        encoder(torch.tensor([0]))


def test_fill_runs_once_on_the_trainer_device(fast_trainer):
    model = WordModel(CacheConfig(batch_size=5))
    trainer = fast_trainer()
    set_up(model, pair_loader(), trainer=trainer)
    encoder = model.model.encoders["default"]
    assert encoder.rows().device == trainer.strategy.root_device
    assert encoder.wrapped_encoder.encoded == 16  # one pass, 16 objects
    assert encoder.wrapped_encoder.training  # the fill gives the mode back


def test_quaterion_fit_with_full_cache_trains_the_head():
    vectors, labels = make_clusters(n_classes=4, per_class=24, dim=16)
    model = WordModel(CacheConfig(), encoders=lambda: VectorEncoder(16))
    model._model.head = LinearHead(16, output_size=8)
    model._loss = TripletLoss()
    before = [p.detach().clone() for p in model.model.head.parameters()]
    trainer = pl.Trainer(
        accelerator="cpu", max_epochs=2, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    loader = GroupSimilarityDataLoader(group_samples(vectors, labels), batch_size=16, shuffle=True)
    Quaterion.fit(model, trainer, loader)
    after = list(model.model.head.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
    assert isinstance(model.model.encoders["default"], VectorEncoder)  # unwrapped after fit


class BrokenWordEncoder(WordEncoder):
    """Gives an infinite embedding for "owl" (the second fill batch holds it)."""

    def forward(self, batch: Tensor) -> Tensor:
        embeddings = super().forward(batch).clone()
        embeddings[batch == WORDS.index("owl")] = float("inf")
        return embeddings


class NoSamples(torch.utils.data.IterableDataset):
    def __iter__(self):
        return iter([])


@pytest.mark.parametrize(
    ("config", "encoder", "samples", "error", "message"),
    [
        (CacheConfig(batch_size=1), BrokenWordEncoder, None, ValueError,
         "Encoder 'default' gave NaN or infinite embeddings in train fill batch 1"),
        (CacheConfig(key_extractors=lambda word: [word]), WordEncoder, None, TypeError,
         "key extractor of encoder 'default' returned an unhashable list"),
        (CacheConfig(key_extractors=lambda word: len(word)), WordEncoder, None, ValueError,
         "gives the same key 3 to different objects"),
        (CacheConfig(), WordEncoder, NoSamples(), ValueError,
         "The train loader yielded no samples; pass a dataset with at least one sample"),
    ],
)  # fmt: skip
def test_bad_data_for_the_cache_is_refused_with_the_reason(
    config, encoder, samples, error, message
):
    model = WordModel(config, encoders=encoder)
    loader = pair_loader() if samples is None else PairsSimilarityDataLoader(samples, batch_size=2)
    with pytest.raises(error, match=message):
        set_up(model, loader)


@pytest.mark.parametrize(
    ("field", "value"), [("batch_size", 0), ("batch_size", -3), ("num_workers", -1)]
)
def test_cache_config_rejects_impossible_sizes(field, value):
    with pytest.raises(ValueError, match=f"CacheConfig.{field} must be .* got {value}"):
        CacheConfig(**{field: value})
