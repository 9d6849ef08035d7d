"""Base class of losses trained on pairs of objects."""

from __future__ import annotations

import torch
from torch import Tensor

from quaterion.loss.similarity_loss import SimilarityLoss


class PairwiseLoss(SimilarityLoss):
    """Loss over ``P`` pairs of objects, used with ``PairsSimilarityDataLoader``.

    ``forward(embeddings (2P, D), pairs (P, 2), labels (P,), subgroups (2P,)) -> 0-dim tensor``:
    ``pairs[i]`` holds the rows of the two objects of pair ``i``, ``labels[i]`` its score
    (1.0 similar, 0.0 dissimilar), ``subgroups[k]`` the subgroup of object ``k`` (objects of
    different subgroups may serve as negatives of each other).
    """

    def forward(
        self, embeddings: Tensor, pairs: Tensor, labels: Tensor, subgroups: Tensor
    ) -> Tensor:
        """Loss of a batch of labelled pairs.

        Args:
            embeddings: ``(2P, D)`` embeddings of the objects of the ``P`` pairs.
            pairs: ``(P, 2)`` rows of ``embeddings`` holding each pair's two objects.
            labels: ``(P,)`` score of each pair: 1.0 similar, 0.0 dissimilar.
            subgroups: ``(2P,)`` subgroup of each object; objects of different subgroups may serve
                as negatives.

        Returns:
            a 0-dim tensor.
        """
        raise NotImplementedError

    def check_inputs(
        self,
        embeddings: Tensor,
        pairs: Tensor,
        labels: Tensor | None = None,
        subgroups: Tensor | None = None,
    ) -> None:
        """Raise ValueError naming the problem when the shapes or pair indices are inconsistent.

        Empty ``labels`` / ``subgroups`` tensors are accepted as "not given".

        Args:
            embeddings: ``(2P, D)`` embeddings of the objects of the ``P`` pairs.
            pairs: ``(P, 2)`` rows of ``embeddings`` holding each pair's two objects.
            labels: ``(P,)`` score of each pair: 1.0 similar, 0.0 dissimilar.
            subgroups: ``(2P,)`` subgroup of each object; objects of different subgroups may serve
                as negatives.
        """
        name = type(self).__name__
        if embeddings.dim() != 2:
            raise ValueError(
                f"{name}: embeddings must have shape (num_objects, dim), "
                f"got {tuple(embeddings.shape)}"
            )
        if pairs.dim() != 2 or pairs.shape[1] != 2 or pairs.is_floating_point():
            raise ValueError(
                f"{name}: pairs must be an integer tensor of shape (num_pairs, 2), got "
                f"{pairs.dtype} {tuple(pairs.shape)}"
            )
        num_objects, num_pairs = len(embeddings), len(pairs)
        if num_pairs:
            low, high = torch.stack(torch.aminmax(pairs)).tolist()
            if low < 0 or high >= num_objects:
                raise ValueError(
                    f"{name}: pairs index rows in [{low}, {high}] but embeddings has "
                    f"{num_objects} rows; pairs must index rows of embeddings"
                )
        if labels is not None and labels.numel() and tuple(labels.shape) != (num_pairs,):
            raise ValueError(
                f"{name}: labels must have one score per pair, shape ({num_pairs},), "
                f"got {tuple(labels.shape)}"
            )
        if subgroups is not None and subgroups.numel() and tuple(subgroups.shape) != (num_objects,):
            raise ValueError(
                f"{name}: subgroups must have one value per embedding, shape ({num_objects},), "
                f"got {tuple(subgroups.shape)}"
            )
