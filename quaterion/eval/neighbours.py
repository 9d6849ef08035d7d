"""Nearest groups: the groups whose centroids are closest, found with the retrieval engine."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from quaterion.distances import Distance
from quaterion.eval.ranking import CandidateIndex


def group_centroids(embeddings: Tensor, groups: Tensor, num_groups: int, distance: Distance | str
                    ) -> Tensor:  # fmt: skip
    """``[G, D]`` mean embedding of each group (of the unit vectors for the cosine distance,
    whose ranking ignores length).

    Args:
        embeddings: ``[N, D]`` embeddings.
        groups: ``[N]`` group index of each embedding, in ``[0, num_groups)``.
        num_groups: number of groups ``G``; each must have an embedding.
        distance: the distance the centroids are ranked by (a ``Distance`` or its name).
    """
    if embeddings.dim() != 2 or groups.shape != (len(embeddings),):
        raise ValueError(
            f"embeddings must be [N, D] and groups [N], got {tuple(embeddings.shape)} and "
            f"{tuple(groups.shape)}"
        )
    groups = groups.to(embeddings.device, torch.long)
    if Distance(distance) == Distance.COSINE:
        embeddings = F.normalize(embeddings, dim=1)
    counts = torch.bincount(groups, minlength=num_groups)
    if len(counts) > num_groups or bool((counts == 0).any()):
        raise ValueError(f"every group index in [0, {num_groups}) needs at least one embedding")
    sums = torch.zeros(num_groups, embeddings.shape[1], dtype=embeddings.dtype,
                       device=embeddings.device)  # fmt: skip
    sums.index_add_(0, groups, embeddings)
    return sums / counts[:, None].to(embeddings.dtype)


def nearest_groups(
    embeddings: Tensor,
    groups: Tensor,
    num_groups: int,
    k: int,
    distance: Distance | str = Distance.COSINE,
) -> Tensor:
    """``[G, k]`` the ``k`` groups nearest to each group, nearest first: the groups whose
    centroids (:func:`group_centroids`) rank first among the other centroids, ranked exactly by
    the retrieval engine (ties go to the smaller group index).

    Args:
        embeddings: ``[N, D]`` embeddings.
        groups: ``[N]`` group index of each embedding, in ``[0, num_groups)``.
        num_groups: number of groups ``G``.
        k: neighbours per group, ``1 <= k < G``.
        distance: a ``Distance`` or its name.
    """
    if not 1 <= k < num_groups:
        raise ValueError(f"k must be in [1, {num_groups}) (the other groups), got {k}")
    centroids = group_centroids(embeddings, groups, num_groups, distance)
    own = torch.arange(num_groups, device=centroids.device)
    return CandidateIndex(centroids, distance).block(centroids, excluded=own).topk(k)
