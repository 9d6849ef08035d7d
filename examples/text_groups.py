"""Text groups: a WordNet definition should find the other definitions of its category.

The first tutorial of the documentation (docs/tutorials/text_groups.md). Definitions of five
WordNet noun categories (animal, artifact, feeling, food, person) are grouped by category; a
skip-connection head on frozen, cached MiniLM learns with a hard-mining triplet loss; the
held-out definitions are ranked before and after training; the model is saved as a servable,
loaded back with `quaterion_models` alone and queried.

    python examples/text_groups.py            # 2000 definitions
    python examples/text_groups.py --small    # 160 definitions, for CI
"""

from __future__ import annotations

import argparse
import tempfile

import pytorch_lightning as pl
import torch
from example_data import CATEGORIES, lexical_definitions
from torch.optim import Adam

from quaterion import Quaterion, TrainableModel
from quaterion.dataset import GroupSimilarityDataLoader, SimilarityGroupSample
from quaterion.eval.retrieval import retrieval_metrics
from quaterion.loss import TripletLoss
from quaterion.train.cache import CacheConfig, CacheType
from quaterion_models import SimilarityModel
from quaterion_models.encoders.extras import SentenceTransformerEncoder, minilm_path
from quaterion_models.heads import EmptyHead, SkipConnectionHead


# --8<-- [start:model]
class TextGroupsModel(TrainableModel):
    """Frozen MiniLM, its outputs cached; a skip-connection head trained with a triplet loss."""

    def __init__(self, cache_dir: str | None = None, mining: str = "hard", lr: float = 1e-2):
        self.cache_dir = cache_dir
        self.mining = mining
        self.lr = lr
        super().__init__()  # calls the configure_* hooks below, in order

    def configure_encoders(self):
        return SentenceTransformerEncoder(minilm_path())  # 384-d, frozen by default

    def configure_caches(self):
        # encode every definition once; with a cache_dir, later runs skip MiniLM entirely
        return CacheConfig(CacheType.AUTO, save_dir=self.cache_dir, batch_size=128)

    def configure_head(self, input_embedding_size: int):
        return SkipConnectionHead(input_embedding_size)  # starts as (almost) the identity

    def configure_loss(self):
        return TripletLoss(mining=self.mining, margin=0.5)

    def configure_optimizers(self):
        return Adam(self.model.parameters(), lr=self.lr)


# --8<-- [end:model]


# --8<-- [start:fit]
def fit(
    model: TrainableModel,
    train: list[SimilarityGroupSample],
    held_out: list[SimilarityGroupSample],
    epochs: int,
    batch_size: int = 64,
) -> None:
    """Train `model` on `train`, validating on `held_out` after every epoch."""
    trainer = pl.Trainer(
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=False,  # the servable is saved explicitly below
        enable_model_summary=False,
        enable_progress_bar=False,
    )
    Quaterion.fit(
        model,
        trainer,
        GroupSimilarityDataLoader(train, batch_size=batch_size, shuffle=True),
        GroupSimilarityDataLoader(held_out, batch_size=batch_size),
    )


# --8<-- [end:fit]


# --8<-- [start:evaluate]
def frozen_embeddings(model: TrainableModel, texts: list[str]) -> torch.Tensor:
    """MiniLM's embeddings of `texts`, without the head: the baseline every head must beat."""
    encoder = model.model.encoders["default"]
    frozen = SimilarityModel(encoders=encoder, head=EmptyHead(encoder.embedding_size))
    return frozen.encode(texts, batch_size=128, to_numpy=False)


def with_head(model: TrainableModel, embeddings: torch.Tensor) -> torch.Tensor:
    """The trained head applied to frozen embeddings: the same as `model.model.encode(texts)`,
    without running MiniLM a second time."""
    with torch.no_grad():
        return model.model.head.eval()(embeddings)


def scores(embeddings: torch.Tensor, samples: list[SimilarityGroupSample]) -> dict[str, float]:
    """Each held-out definition queries all the others; same category = relevant."""
    groups = torch.tensor([sample.group for sample in samples])
    metrics = retrieval_metrics(embeddings, groups, k=[1, 10])
    return {name: round(float(metrics[name]), 4) for name in ("precision@1", "r_precision", "mrr")}


# --8<-- [end:evaluate]


def main(small: bool = False, cache_dir: str | None = None) -> dict[str, dict[str, float]]:
    # --8<-- [start:main]
    pl.seed_everything(0, verbose=False)
    train, held_out = lexical_definitions(160 if small else 2000)
    model = TextGroupsModel(cache_dir)
    fit(model, train, held_out, epochs=3 if small else 10)

    frozen = frozen_embeddings(model, [sample.obj for sample in held_out])
    trained = with_head(model, frozen)
    results = {"frozen": scores(frozen, held_out), "trained": scores(trained, held_out)}
    print(f"held-out retrieval ({len(held_out)} definitions): {results}")
    # --8<-- [end:main]

    # --8<-- [start:serve]
    with tempfile.TemporaryDirectory() as servable:
        model.save_servable(servable)  # JSON configs + safetensors: no pickles
        served = SimilarityModel.load(servable)  # needs torch and quaterion_models only
        corpus = [sample.obj for sample in held_out]
        query = served.encode(["a sweet dish served at the end of a meal"], to_numpy=False)
        best = torch.nn.functional.cosine_similarity(query, served.encode(corpus, to_numpy=False))
        for index in best.argsort(descending=True)[:3].tolist():
            category = CATEGORIES[held_out[index].group]
            print(f"  {float(best[index]):.3f}  [{category}] {corpus[index]}")
    # --8<-- [end:serve]
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="tiny run, for CI")
    parser.add_argument("--cache-dir", default=None, help="persist the cache here (default: none)")
    args = parser.parse_args()
    main(args.small, args.cache_dir)
