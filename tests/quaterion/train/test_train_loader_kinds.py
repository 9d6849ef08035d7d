"""Training works with every loader set-up: switch encoders, loader workers, iterable datasets."""

import torch
from torch.utils.data import IterableDataset

from quaterion import Quaterion, TrainableModel
from quaterion.dataset import GroupSimilarityDataLoader, SimilarityGroupSample
from quaterion.loss import TripletLoss
from quaterion_models.encoders import Encoder, SwitchEncoder
from quaterion_models.heads import LinearHead, SwitchHead


def stack_tagged(batch):
    return torch.stack([vector for _, vector in batch])


class TaggedEncoder(Encoder):
    """Frozen identity over ``(tag, vector)`` records."""

    @property
    def trainable(self):
        return False

    @property
    def embedding_size(self):
        return 4

    def get_collate_fn(self):
        return stack_tagged

    def forward(self, batch):
        return batch

    def save(self, output_path):
        pass

    @classmethod
    def load(cls, input_path):
        return cls()


class TagSwitch(SwitchEncoder):
    @classmethod
    def encoder_selection(cls, record):
        return record[0]


class SwitchModel(TrainableModel):
    def configure_encoders(self):
        return TagSwitch({"a": TaggedEncoder(), "b": TaggedEncoder()})

    def configure_head(self, input_embedding_size):
        return SwitchHead(
            {"a": LinearHead(input_embedding_size, 3), "b": LinearHead(input_embedding_size, 3)},
            input_embedding_size=input_embedding_size,
        )

    def configure_loss(self):
        return TripletLoss(mining="all")

    def configure_optimizers(self):
        return torch.optim.SGD(self.model.parameters(), lr=0.1)


def test_switch_encoder_and_head_train_one_epoch(fast_trainer):
    g = torch.Generator().manual_seed(0)
    samples = [
        SimilarityGroupSample(obj=("ab"[i % 2], torch.randn(4, generator=g)), group=i % 3)
        for i in range(24)
    ]
    loader = GroupSimilarityDataLoader(samples, batch_size=8)
    model = SwitchModel()
    model.setup_dataloader(loader)
    features, _ = next(iter(loader))
    assert [meta["encoder"] for meta in features["meta"]] == list("ab" * 4)  # meta survives

    heads = model.model.head
    before = {key: getattr(heads, key).layer.weight.detach().clone() for key in "ab"}
    Quaterion.fit(model, fast_trainer(max_epochs=1), loader)
    for key in "ab":  # rows reached both heads, so both were trained
        assert not torch.equal(before[key], getattr(heads, key).layer.weight)


def test_fit_with_loader_workers(clusters, to_group_samples, head_model, fast_trainer):
    vectors, labels = clusters(per_class=8)
    loader = GroupSimilarityDataLoader(
        to_group_samples(vectors, labels), batch_size=8, num_workers=2
    )
    model = head_model(vectors.shape[1], TripletLoss)
    trainer = fast_trainer(max_epochs=1)
    Quaterion.fit(model, trainer, loader)
    assert trainer.global_step == 4


class Stream(IterableDataset):
    def __init__(self, samples):
        self.samples = samples

    def __iter__(self):
        return iter(self.samples)


def test_fit_with_iterable_dataset(clusters, to_group_samples, head_model, fast_trainer):
    vectors, labels = clusters(per_class=8)
    loader = GroupSimilarityDataLoader(Stream(to_group_samples(vectors, labels)), batch_size=8)
    model = head_model(vectors.shape[1], TripletLoss)
    trainer = fast_trainer(max_epochs=2)
    Quaterion.fit(model, trainer, loader)
    assert trainer.global_step == 8
