"""Question -> answer search, trained on positive pairs with MultipleNegativesRankingLoss.

The pairs come from WordNet: the "question" is a word ("harpsichord") and the "answer" is its
definition ("a clavier with strings that are plucked ..."). Within a batch every other answer
serves as a negative, so only positive pairs are needed. MiniLM stays frozen and its outputs are
cached; only a skip-connection head trains.

    python examples/question_answer_pairs.py            # 3000 pairs
    python examples/question_answer_pairs.py --small    # 240 pairs, for CI
"""

from __future__ import annotations

import argparse

import pytorch_lightning as pl
import torch
from example_data import noun_synsets
from torch.optim import Adam

from quaterion import Quaterion, TrainableModel
from quaterion.data import subsample, train_held_out_split, word_definition_pairs
from quaterion.dataset import PairsSimilarityDataLoader
from quaterion.eval.retrieval import pair_retrieval_metrics
from quaterion.loss import MultipleNegativesRankingLoss
from quaterion.train.cache import CacheConfig, CacheType
from quaterion_models import SimilarityModel
from quaterion_models.encoders.extras import SentenceTransformerEncoder, minilm_path
from quaterion_models.heads import EmptyHead, SkipConnectionHead


class QuestionAnswerModel(TrainableModel):
    def __init__(self, lr: float = 3e-3):
        self.lr = lr
        super().__init__()

    def configure_encoders(self):
        return SentenceTransformerEncoder(minilm_path())  # frozen by default

    def configure_caches(self):
        return CacheConfig(CacheType.AUTO, batch_size=128)

    def configure_head(self, input_embedding_size: int):
        return SkipConnectionHead(input_embedding_size)

    def configure_loss(self):
        return MultipleNegativesRankingLoss(symmetric=True)

    def configure_optimizers(self):
        return Adam(self.model.parameters(), lr=self.lr)


def answer_ranking(questions: torch.Tensor, answers: torch.Tensor) -> dict[str, float]:
    """Each question ranks all held-out answers; its own answer is the relevant one."""
    matches = torch.arange(len(questions)).repeat(2, 1).T  # question i <-> answer i
    metrics = pair_retrieval_metrics(answers, matches, k=[1, 5], query_embeddings=questions)
    return {name: float(metrics[name]) for name in ("precision@1", "recall@5", "mrr")}


def main(small: bool = False) -> dict[str, dict[str, float]]:
    pl.seed_everything(0, verbose=False)
    pairs = subsample(word_definition_pairs(list(noun_synsets())), 240 if small else 3000)
    train, held_out = train_held_out_split(pairs, held_out_fraction=0.25, seed=0)
    model = QuestionAnswerModel()
    trainer = pl.Trainer(
        max_epochs=2 if small else 10,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
    )
    Quaterion.fit(
        model,
        trainer,
        PairsSimilarityDataLoader(train, batch_size=64, shuffle=True),
        PairsSimilarityDataLoader(held_out, batch_size=64),
    )
    # the trained model is encoder -> head: encode once with the frozen encoder alone, then
    # apply the head, to compare both without running MiniLM twice
    encoder = model.model.encoders["default"]
    frozen = SimilarityModel(encoders=encoder, head=EmptyHead(encoder.embedding_size))
    questions = frozen.encode([pair.obj_a for pair in held_out], batch_size=128, to_numpy=False)
    answers = frozen.encode([pair.obj_b for pair in held_out], batch_size=128, to_numpy=False)
    head = model.model.head.eval()
    with torch.no_grad():
        results = {
            "frozen": answer_ranking(questions, answers),
            "trained": answer_ranking(head(questions), head(answers)),
        }
    print(f"held-out answer ranking ({len(held_out)} pairs): {results}")
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="tiny run, for CI")
    main(parser.parse_args().small)
