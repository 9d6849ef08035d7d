"""Embedding confidence: how sure is a similarity model about one answer?

A similarity model has no softmax to read a probability from, but its neighbourhood says a lot.
Classify a held-out definition by its k nearest training definitions (majority category) and
call the share of neighbours that agree its confidence. When most neighbours agree, the
prediction is usually right; when they split, the object sits between categories and the
answer deserves less trust, for example a human check or a fallback. This example trains the
head of examples/text_groups.py, then compares the accuracy of confident and unsure
predictions.

    python examples/embedding_confidence.py            # 2000 definitions
    python examples/embedding_confidence.py --small    # 160 definitions, for CI
"""

from __future__ import annotations

import argparse

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from example_data import CATEGORIES, lexical_definitions
from text_groups import TextGroupsModel, fit, frozen_embeddings, with_head


# --8<-- [start:confidence]
def knn_predict(
    queries: torch.Tensor, references: torch.Tensor, labels: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(predicted label, confidence) of each query: the majority label of its `k` nearest
    references by cosine similarity, and the share of those `k` that carry it."""
    similarity = F.normalize(queries, dim=1) @ F.normalize(references, dim=1).T  # [Q, R]
    neighbours = labels[similarity.topk(k, dim=1).indices]  # [Q, k]
    votes = F.one_hot(neighbours, int(labels.max()) + 1).sum(dim=1)  # [Q, num_labels]
    count, predicted = votes.max(dim=1)
    return predicted, count.float() / k


# --8<-- [end:confidence]


def main(small: bool = False, cache_dir: str | None = None) -> dict[str, float]:
    pl.seed_everything(0, verbose=False)
    train, held_out = lexical_definitions(160 if small else 2000)
    model = TextGroupsModel(cache_dir)
    fit(model, train, held_out, epochs=3 if small else 10)

    # --8<-- [start:evaluate]
    texts = [sample.obj for sample in train + held_out]
    embeddings = with_head(model, frozen_embeddings(model, texts))  # MiniLM runs once
    references, queries = embeddings[: len(train)], embeddings[len(train) :]
    labels = torch.tensor([sample.group for sample in train])
    truth = torch.tensor([sample.group for sample in held_out])
    predicted, confidence = knn_predict(queries, references, labels, k=10)
    correct = (predicted == truth).float()

    confident = confidence >= confidence.median()  # the more confident half (ties included)
    results = {
        "accuracy": float(correct.mean()),
        "accuracy_confident": float(correct[confident].mean()),
        "accuracy_unsure": float(correct[~confident].mean()) if (~confident).any() else 1.0,
        "share_confident": float(confident.float().mean()),
    }
    print(f"k-NN category of {len(held_out)} held-out definitions: {results}")
    for index in confidence.argsort()[:3].tolist():  # the least confident answers
        print(
            f"  confidence {float(confidence[index]):.1f}: predicted "
            f"{CATEGORIES[int(predicted[index])]}, truly {CATEGORIES[int(truth[index])]}: "
            f"{held_out[index].obj}"
        )
    # --8<-- [end:evaluate]
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="tiny run, for CI")
    parser.add_argument("--cache-dir", default=None, help="persist the cache here (default: none)")
    args = parser.parse_args()
    main(args.small, args.cache_dir)
