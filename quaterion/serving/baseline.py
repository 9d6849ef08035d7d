"""The frozen baseline of a servable: its encoders without the trained head.

A servable is encoders -> head, so one encoder pass gives both what the frozen encoder returns
(the baseline a trained model is judged against) and, through the head, what the servable
returns.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from quaterion_models import SimilarityModel
from quaterion_models.heads import EmptyHead


def frozen_baseline(model: SimilarityModel) -> SimilarityModel:
    """A model of `model`'s encoders (shared, not copied) with an identity head.

    Args:
        model: a trained servable.
    """
    return SimilarityModel(
        encoders=dict(model.encoders), head=EmptyHead(model.head.input_embedding_size)
    )


def encode_with_baseline(
    model: SimilarityModel,
    objects: list[Any],
    batch_size: int = 64,
    show_progress: bool = False,
    baseline: SimilarityModel | None = None,
) -> tuple[Tensor, Tensor]:
    """(frozen encoders' embeddings `[N, D_in]`, servable's embeddings `[N, D_out]`) of
    `objects`, from one encoder pass; pass `baseline` (from `frozen_baseline`) to reuse it.

    Args:
        model: a trained servable.
        objects: raw records.
        batch_size: records encoded at once.
        show_progress: draw a progress bar.
        baseline: the result of `frozen_baseline(model)`, to reuse it.
    """
    baseline = baseline or frozen_baseline(model)
    before = baseline.encode(
        objects, batch_size=batch_size, to_numpy=False, show_progress=show_progress
    )
    head = model.head
    training = head.training
    head.eval()
    try:
        with torch.no_grad():
            after = head(before)
    finally:
        head.train(training)
    return before, after
