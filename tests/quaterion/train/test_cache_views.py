"""`CacheConfig(views=K)`: the fill reads an augmenting data set K times and keeps every view;
training reads one view per object, drawn under the seed."""

import pytest
import torch
from support import HeadModel, VectorEncoder

from quaterion import Quaterion
from quaterion.dataset import GroupSimilarityDataLoader, SimilarityGroupSample
from quaterion.loss import TripletLoss
from quaterion.train.cache import CacheConfig, CacheType

N, DIM = 12, 4


class Augmented(torch.utils.data.Dataset):
    """Object i is `i` in every coordinate plus noise in [0, 0.5) drawn at each read (when
    `augment`): every view of it stays in [i, i + 0.5)."""

    def __init__(self, augment=True):
        self.augment = augment

    def __len__(self):
        return N

    def __getitem__(self, index):
        noise = torch.rand(DIM) / 2 if self.augment else torch.zeros(DIM)
        return SimilarityGroupSample(obj=torch.full((DIM,), float(index)) + noise, group=index % 3)


class ViewsModel(HeadModel):
    def __init__(self, views, mixed=False):
        self.views, self.mixed = views, mixed
        super().__init__(DIM, TripletLoss)

    def configure_encoders(self):
        if self.mixed:
            return {"frozen": VectorEncoder(DIM), "tuned": VectorEncoder(DIM, trainable=True)}
        return VectorEncoder(DIM)

    def configure_caches(self):
        return CacheConfig(CacheType.CPU, batch_size=5, views=self.views)


def cached(views, augment=True, mixed=False, val=False, generator=None):
    model = ViewsModel(views, mixed)
    data = Augmented(augment)
    train = GroupSimilarityDataLoader(data, batch_size=4, shuffle=True, generator=generator)
    loaders = [train]
    loaders.append(GroupSimilarityDataLoader(Augmented(augment), batch_size=4) if val else None)
    for loader in loaders[: 1 + val]:
        model.setup_dataloader(loader)
    train, val_loader = model.setup_cache(None, *loaders)
    name = "frozen" if mixed else "default"
    return model.model.encoders[name], train, val_loader, name


def epoch_rows(train, name):
    return torch.cat([features["data"][name] for features, _ in train])


def test_every_view_is_stored_and_each_epoch_reads_one_view_per_object():
    torch.manual_seed(0)
    encoder, train, _, name = cached(views=3)
    table = encoder.rows("train")
    assert encoder.num_rows == 3 * N and table.shape == (3 * N, DIM)
    views = table.view(3, N, DIM)  # view v of object i is row v * N + i
    objects = torch.arange(N, dtype=torch.float).view(1, N, 1)
    assert ((views >= objects) & (views < objects + 0.5)).all()
    assert not torch.equal(views[0], views[1]) and not torch.equal(views[1], views[2])
    epochs = [epoch_rows(train, name) for _ in range(4)]
    for rows in epochs:  # each object once per epoch, in one of its views
        assert sorted((rows % N).tolist()) == list(range(N))
        embeddings = encoder(rows)
        assert torch.equal(embeddings, table[rows])
    drawn = torch.stack([rows[torch.argsort(rows % N)] // N for rows in epochs])  # [epoch, object]
    assert set(drawn.flatten().tolist()) == {0, 1, 2}
    assert (drawn != drawn[0]).any()  # another epoch, other views


def test_drawn_views_follow_the_seed():
    encoder, train, _, name = cached(views=4)
    runs = []
    for _ in range(2):
        torch.manual_seed(7)
        runs.append([epoch_rows(train, name) for _ in range(2)])
    assert all(torch.equal(a, b) for a, b in zip(*runs, strict=True))


def test_partial_cache_draws_views_and_validation_keeps_one():
    torch.manual_seed(0)
    encoder, train, val, name = cached(views=2, mixed=True, val=True)
    assert len(encoder.rows("train")) == 2 * N and len(encoder.rows("val")) == N
    rows = torch.cat([epoch_rows(train, name) for _ in range(3)])
    assert set((rows // N).tolist()) == {0, 1}  # both views of the training rows
    assert epoch_rows(val, name).tolist() == list(range(2 * N, 3 * N))  # rows after training's


def test_one_view_is_the_plain_cache_and_draws_no_random_numbers():
    torch.manual_seed(0)
    # the shuffle draws from the loader's own generator, not from the global RNG
    encoder, train, _, name = cached(1, augment=False, generator=torch.Generator().manual_seed(0))
    assert encoder.num_rows == N
    state = torch.get_rng_state()
    rows = epoch_rows(train, name)
    assert torch.equal(torch.get_rng_state(), state)
    assert sorted(rows.tolist()) == list(range(N))
    plain = torch.stack([Augmented(augment=False)[i].obj for i in range(N)])
    assert torch.equal(encoder.embeddings("train"), plain)


@pytest.mark.parametrize("views", [0, -2, 1.5, "2", True, None])
def test_bad_view_counts_are_refused(views):
    message = rf"CacheConfig.views must be an integer of at least 1 .*got {views!r}"
    with pytest.raises(ValueError, match=message):
        CacheConfig(views=views)


def test_views_with_key_extractors_are_refused():
    with pytest.raises(ValueError, match=r"views=2.*key_extractors"):
        CacheConfig(views=2, key_extractors=str)


def test_fit_trains_on_cached_views(fast_trainer):
    torch.manual_seed(0)
    model = ViewsModel(views=2)
    trainer = fast_trainer(max_epochs=2)
    Quaterion.fit(model, trainer, GroupSimilarityDataLoader(Augmented(), batch_size=4))
    assert trainer.global_step == 6
