"""Image similarity on Fashion-MNIST: a frozen EfficientNet-Lite0 plus a trained projection.

Clothes of the same class (sneaker, bag, coat ...) should be neighbours. The convolutional
encoder runs once per image thanks to the cache; a stacked projection head, trained with a
hard-mining triplet loss, maps its 1280-d features to a 128-d similarity space. The held-out
images are scored with the original API: an `Evaluator` with `RetrievalRPrecision`.

With `--views K` the training images are augmented (random crops and horizontal flips, drawn
on every read by `AugmentedGroups`) and the cache keeps K augmented views of each image
(`CacheConfig(views=K)`): the encoder still runs only in the fill, K times per image, and each
epoch trains on one of the views.

    python examples/image_similarity.py            # 3000 train / 1000 held-out images
    python examples/image_similarity.py --views 4  # the same on 4 augmented views per image
    python examples/image_similarity.py --small    # 160 / 80 images, for CI
"""

from __future__ import annotations

import argparse

import pytorch_lightning as pl
from torch.optim import Adam

from quaterion import Quaterion, TrainableModel
from quaterion.data import AugmentedGroups, fashion_mnist_groups
from quaterion.dataset import GroupSimilarityDataLoader
from quaterion.eval.evaluator import Evaluator
from quaterion.eval.group import RetrievalRPrecision
from quaterion.eval.samplers.group_sampler import GroupSampler
from quaterion.loss import TripletLoss
from quaterion.train.cache import CacheConfig, CacheType
from quaterion_models import SimilarityModel
from quaterion_models.encoders.extras import EfficientNetLite0Encoder
from quaterion_models.heads import EmptyHead, StackedProjectionHead

IMAGE_SIZE = 64  # Fashion-MNIST's 28x28 images are upscaled to this side


class ImageModel(TrainableModel):
    def __init__(self, lr: float = 1e-3, views: int = 1):
        self.lr, self.views = lr, views
        super().__init__()

    def configure_encoders(self):
        return EfficientNetLite0Encoder(image_size=IMAGE_SIZE)  # frozen ImageNet weights

    def configure_caches(self):
        # views > 1: the fill reads each (augmented) training image `views` times
        return CacheConfig(CacheType.AUTO, batch_size=64, views=self.views)

    def configure_head(self, input_embedding_size: int):
        return StackedProjectionHead(input_embedding_size, output_sizes=[512, 128])

    def configure_loss(self):
        return TripletLoss(mining="hard", margin=0.5)

    def configure_optimizers(self):
        return Adam(self.model.parameters(), lr=self.lr)


def r_precision(model: SimilarityModel, images: list) -> float:
    evaluator = Evaluator(RetrievalRPrecision(), GroupSampler(encode_batch_size=64))
    return float(Quaterion.evaluate(evaluator, images, model)["RetrievalRPrecision"])


def main(small: bool = False, views: int = 1) -> dict[str, float]:
    pl.seed_everything(0, verbose=False)
    train_size, held_out_size = (160, 80) if small else (3000, 1000)
    images = fashion_mnist_groups("train", limit=train_size + held_out_size)
    train, held_out = images[:train_size], images[train_size:]
    model = ImageModel(views=views)
    # one view: the plain images; several: each read is a new random crop and flip
    data = AugmentedGroups(train, padding=2) if views > 1 else train
    trainer = pl.Trainer(
        max_epochs=2 if small else 15,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
    )
    Quaterion.fit(
        model,
        trainer,
        GroupSimilarityDataLoader(data, batch_size=64, shuffle=True),
        GroupSimilarityDataLoader(held_out, batch_size=64),
    )
    encoder = model.model.encoders["default"]
    frozen = SimilarityModel(encoders=encoder, head=EmptyHead(encoder.embedding_size))
    scores = {
        "r_precision_frozen": r_precision(frozen, held_out),
        "r_precision_trained": r_precision(model.model, held_out),
    }
    print(f"held-out retrieval ({len(held_out)} images): {scores}")
    return scores


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="tiny run, for CI")
    parser.add_argument("--views", type=int, default=1, help="augmented views cached per image")
    arguments = parser.parse_args()
    main(arguments.small, arguments.views)
