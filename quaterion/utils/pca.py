"""Two-dimensional PCA of embeddings, for plots and the service's map."""

from __future__ import annotations

import torch
from torch import Tensor


def pca_2d(embeddings: Tensor) -> Tensor:
    """Project `[N, D]` rows onto their two principal axes -> `[N, 2]` (sign fixed per axis).

    Args:
        embeddings: `[N, D]` vectors.
    """
    centered = embeddings.double() - embeddings.double().mean(dim=0, keepdim=True)  # [N, D]
    _, _, right = torch.linalg.svd(centered, full_matrices=False)  # right: [min(N, D), D]
    axes = right[:2].T  # [D, 2] (fewer columns when N or D < 2)
    # SVD axes are defined up to sign: make the largest-magnitude loading positive
    signs = torch.sign(axes.gather(0, axes.abs().argmax(dim=0, keepdim=True)))  # [1, 2]
    projected = (centered @ (axes * signs)).float()  # [N, <=2]
    return torch.nn.functional.pad(projected, (0, 2 - projected.shape[1]))  # [N, 2]
