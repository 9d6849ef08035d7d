"""Base class of losses trained on objects labelled with group ids."""

from __future__ import annotations

import numbers

import torch
from torch import Tensor

from quaterion.loss.similarity_loss import SimilarityLoss


class GroupLoss(SimilarityLoss):
    """Loss over ``B`` objects with group ids, used with ``GroupSimilarityDataLoader``.

    ``forward(embeddings (B, D), groups (B,)) -> 0-dim tensor``; objects sharing a group id are
    similar, all others dissimilar.
    """

    def forward(self, embeddings: Tensor, groups: Tensor) -> Tensor:
        """Loss of a batch of grouped objects: same group = similar.

        Args:
            embeddings: ``(B, D)`` embeddings of the batch.
            groups: ``(B,)`` group id of each embedding.

        Returns:
            a 0-dim tensor.
        """
        raise NotImplementedError

    def xbm_loss(
        self,
        embeddings: Tensor,
        groups: Tensor,
        memory_embeddings: Tensor,
        memory_groups: Tensor,
    ) -> Tensor:
        """Loss of the batch ``(B, D)`` against a cross-batch memory ``(M, D)``, ``(M,)`` (XBM).

        Raises:
            NotImplementedError: the loss does not support XBM.

        Args:
            embeddings: ``(B, D)`` embeddings of the batch.
            groups: ``(B,)`` group id of each embedding.
            memory_embeddings: ``(M, D)`` embeddings remembered from earlier batches.
            memory_groups: ``(M,)`` their group ids.

        Returns:
            a 0-dim tensor.
        """
        raise NotImplementedError(f"XBM is not implemented for {type(self).__name__}")

    def check_inputs(self, embeddings: Tensor, groups: Tensor) -> None:
        """Raise ValueError unless ``embeddings`` is ``(B, D)`` and ``groups`` is ``(B,)``.

        Args:
            embeddings: ``(B, D)`` embeddings of the batch.
            groups: ``(B,)`` group id of each embedding.
        """
        name = type(self).__name__
        if embeddings.dim() != 2:
            raise ValueError(
                f"{name}: embeddings must have shape (batch_size, dim), "
                f"got {tuple(embeddings.shape)}"
            )
        if tuple(groups.shape) != (len(embeddings),):
            raise ValueError(
                f"{name}: groups must have one id per embedding, shape ({len(embeddings)},), "
                f"got {tuple(groups.shape)}"
            )

    def check_sizes(self, embedding_size: int, num_groups: int) -> None:
        """Raise ValueError unless both sizes of a per-group parameter are positive integers.

        Args:
            embedding_size: the embedding width given to the loss.
            num_groups: the number of groups given to the loss.
        """
        for name, value in (("embedding_size", embedding_size), ("num_groups", num_groups)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(
                    f"{type(self).__name__}: {name} must be a positive integer, got {value!r}; "
                    "num_groups is the number of distinct groups (len(GroupLabels) or "
                    "len(loader.group_labels) for named groups)"
                )

    def check_class_ids(self, groups: Tensor, num_groups: int) -> None:
        """Raise ValueError unless ``groups`` holds integer class ids in ``[0, num_groups)``.

        Args:
            groups: ``(B,)`` group id of each embedding.
            num_groups: number of classes the loss was built for.
        """
        name = type(self).__name__
        if groups.is_floating_point() or groups.is_complex() or groups.dtype == torch.bool:
            raise ValueError(
                f"{name}: groups must be an integer tensor of class ids, got {groups.dtype}"
            )
        if len(groups) and (int(groups.min()) < 0 or int(groups.max()) >= num_groups):
            raise ValueError(
                f"{name}: group ids must lie in [0, {num_groups - 1}] (num_groups={num_groups}), "
                f"got ids in [{int(groups.min())}, {int(groups.max())}]; remap the ids to "
                "0..num_groups-1 or raise num_groups"
            )
