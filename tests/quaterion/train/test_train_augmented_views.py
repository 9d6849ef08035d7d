"""End to end: `Quaterion.fit` with `CacheConfig(views=2)` on an augmenting image data set
(`AugmentedGroups`) stores two views per image and trains on both."""

import pytorch_lightning as pl
import torch
from support import HeadModel, VectorEncoder

from quaterion import Quaterion
from quaterion.data import AugmentedGroups
from quaterion.dataset import GroupSimilarityDataLoader, SimilarityGroupSample
from quaterion.loss import TripletLoss
from quaterion.train.cache import CacheConfig, CacheType

N, SIDE = 10, 4  # ten 1 x 4 x 4 images, flattened to 16-d vectors by the encoder


class ImageVectorEncoder(VectorEncoder):
    """Frozen identity on images flattened to vectors."""

    def get_collate_fn(self):
        return lambda images: torch.stack(images).flatten(1)


class ViewsFitModel(HeadModel):
    def __init__(self):
        super().__init__(SIDE * SIDE, TripletLoss)

    def configure_encoders(self):
        return ImageVectorEncoder(SIDE * SIDE)

    def configure_caches(self):
        return CacheConfig(CacheType.CPU, batch_size=4, views=2)


class Recorder(pl.Callback):
    """The cached table when training starts and the rows of every epoch's batches."""

    def __init__(self):
        self.table, self.epochs = None, []

    def on_train_epoch_start(self, trainer, pl_module):
        if self.table is None:
            self.table = pl_module.model.encoders["default"].rows("train").clone()
        self.epochs.append([])

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        features, _targets = batch
        self.epochs[-1].append(features["data"]["default"])


def test_two_view_fit_stores_two_augmented_views_and_trains_on_both():
    pl.seed_everything(0, verbose=False)
    generator = torch.Generator().manual_seed(0)
    images = [
        SimilarityGroupSample(obj=torch.rand(1, SIDE, SIDE, generator=generator), group=i % 2)
        for i in range(N)
    ]
    dataset = AugmentedGroups(images, padding=1, generator=torch.Generator().manual_seed(1))
    model, recorder = ViewsFitModel(), Recorder()
    trainer = pl.Trainer(
        max_epochs=4,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[recorder],
    )
    Quaterion.fit(model, trainer, GroupSimilarityDataLoader(dataset, batch_size=4, shuffle=True))

    views = recorder.table.view(2, N, SIDE * SIDE)  # view v of image i: row v * N + i
    originals = torch.stack([sample.obj.flatten() for sample in images])
    assert not torch.equal(views[0], views[1])  # two reads, two different augmentations
    assert not torch.equal(views[0], originals) and not torch.equal(views[1], originals)
    for v in range(2):  # a crop and flip keeps some pixels of its own image and adds no others
        for i in range(N):
            kept = views[v, i][views[v, i] != 0]
            assert len(kept) > 0 and torch.isin(kept, originals[i]).all()
    seen = []
    for batches in recorder.epochs:
        rows = torch.cat(batches)
        assert sorted((rows % N).tolist()) == list(range(N))  # every image once per epoch
        seen.append(rows // N)
    assert set(torch.cat(seen).tolist()) == {0, 1}  # both views took part in training
    embeddings = model.model.encode([sample.obj for sample in images], to_numpy=False)
    assert embeddings.shape == (N, 8) and torch.isfinite(embeddings).all()
