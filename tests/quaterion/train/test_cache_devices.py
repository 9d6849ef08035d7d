"""Where cached rows live (CacheType) and that training runs on every available device."""

import pytest
import pytorch_lightning as pl
import torch
from support import VectorEncoder, group_samples, make_clusters

from quaterion import Quaterion, TrainableModel
from quaterion.dataset import GroupSimilarityDataLoader
from quaterion.loss import TripletLoss
from quaterion.train.cache import CacheConfig, CacheType, InMemoryCacheEncoder
from quaterion_models.heads import LinearHead

ACCELERATORS = ["cpu", *(["gpu"] if torch.cuda.is_available() else [])]


class TwoEncoderModel(TrainableModel):
    def __init__(self, cache_config, trainable_second):
        self.cache, self.trainable_second = cache_config, trainable_second
        super().__init__()

    def configure_encoders(self):
        return {"a": VectorEncoder(4), "b": VectorEncoder(4, trainable=self.trainable_second)}

    def configure_caches(self):
        return self.cache

    def configure_head(self, input_embedding_size):
        return LinearHead(input_embedding_size, output_size=4)

    def configure_loss(self):
        return TripletLoss()

    def configure_optimizers(self):
        return torch.optim.Adam(self.model.parameters(), lr=0.01)


def expected_storage(cache_type, accelerator):
    if cache_type is CacheType.CPU:
        return "cpu"
    return "cuda" if cache_type is CacheType.GPU or accelerator == "gpu" else "cpu"


@pytest.mark.parametrize("accelerator", ACCELERATORS)
@pytest.mark.parametrize("trainable_second", [False, True], ids=["full", "mixed"])
def test_rows_live_where_the_cache_type_says_and_training_runs(accelerator, trainable_second):
    cache_types = [CacheType.AUTO, CacheType.CPU]
    if torch.cuda.is_available():
        cache_types.append(CacheType.GPU)
    vectors, labels = make_clusters(n_classes=2, per_class=6, dim=4)
    for cache_type in cache_types:
        model = TwoEncoderModel(CacheConfig(mapping={"a": cache_type}), trainable_second)
        trainer = pl.Trainer(
            accelerator=accelerator, devices=1, max_epochs=1, logger=False,
            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        )  # fmt: skip
        loader = GroupSimilarityDataLoader(group_samples(vectors, labels), batch_size=4)
        model.setup_dataloader(loader)
        train, _ = model.setup_cache(trainer, loader, None)
        cached = model.model.encoders["a"]
        assert isinstance(cached, InMemoryCacheEncoder)
        assert cached.rows().device.type == expected_storage(cache_type, accelerator)
        device = trainer.strategy.root_device
        rows = next(iter(train))[0]["data"]["a"].to(device)
        assert cached(rows).device == device  # gathered rows follow the batch
        assert torch.allclose(cached(rows).cpu(), vectors[rows.cpu()])
        model.unwrap_cache()
        Quaterion.fit(model, trainer, loader)
        assert trainer.global_step == 3
