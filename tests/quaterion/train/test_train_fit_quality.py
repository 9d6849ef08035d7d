"""Fitting with each loss family on clustered data lowers the loss and improves retrieval."""

from functools import partial

import pytest
import pytorch_lightning as pl
import torch

from quaterion import Quaterion
from quaterion.dataset import (
    GroupSimilarityDataLoader,
    PairsSimilarityDataLoader,
    SimilarityPairSample,
)
from quaterion.loss import (
    ContrastiveLoss,
    MultipleNegativesRankingLoss,
    OnlineContrastiveLoss,
    TripletLoss,
)


def pair_samples(vectors, labels, with_negatives, seed=0):
    """Each point paired with a random point of its class (score 1) and, if asked, of another
    class (score 0)."""
    g = torch.Generator().manual_seed(seed)
    samples = []
    for i, label in enumerate(labels.tolist()):
        same = torch.nonzero(labels == label).flatten()
        other = torch.nonzero(labels != label).flatten()
        j = same[torch.randint(len(same), (1,), generator=g)].item()
        samples.append(SimilarityPairSample(vectors[i], vectors[j], score=1.0))
        if with_negatives:
            k = other[torch.randint(len(other), (1,), generator=g)].item()
            samples.append(SimilarityPairSample(vectors[i], vectors[k], score=0.0))
    return samples


def full_data_loss(model, loader_cls, samples):
    """The loss over the whole training set at once (no grad)."""
    ids, objects, targets = loader_cls.pre_collate_fn(list(enumerate(samples)))
    with torch.no_grad():
        embeddings = model.model.encode(objects, batch_size=len(objects), to_numpy=False)
        return model.loss(embeddings=embeddings, **targets).item()


CASES = {
    "contrastive": (PairsSimilarityDataLoader, partial(ContrastiveLoss, margin=0.5), True),
    "mnrl": (PairsSimilarityDataLoader, MultipleNegativesRankingLoss, False),
    "triplet": (GroupSimilarityDataLoader, partial(TripletLoss, margin=0.5, mining="hard"), None),
    "online_contrastive": (GroupSimilarityDataLoader, OnlineContrastiveLoss, None),
}


@pytest.mark.parametrize("case", CASES)
def test_fit_lowers_loss_and_raises_precision_at_1(
    case, clusters, to_group_samples, head_model, p_at_1, fast_trainer
):
    loader_cls, loss_factory, with_negatives = CASES[case]
    pl.seed_everything(0, verbose=False)
    vectors, labels = clusters()
    held_out, held_out_labels = clusters(data_seed=99)
    if loader_cls is GroupSimilarityDataLoader:
        samples = to_group_samples(vectors, labels)
    else:
        samples = pair_samples(vectors, labels, with_negatives)
    loader = loader_cls(samples, batch_size=16, shuffle=True)
    model = head_model(vectors.shape[1], loss_factory)

    def precision():
        return p_at_1(model.model.encode(list(held_out), to_numpy=False), held_out_labels)

    loss_before, precision_before = full_data_loss(model, loader_cls, samples), precision()
    Quaterion.fit(model, fast_trainer(max_epochs=10), loader)
    loss_after, precision_after = full_data_loss(model, loader_cls, samples), precision()

    assert loss_after < 0.8 * loss_before, (loss_before, loss_after)
    assert precision_after > precision_before + 0.1, (precision_before, precision_after)
    assert precision_after > 0.9
