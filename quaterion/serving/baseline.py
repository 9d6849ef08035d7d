"""The frozen baseline of a servable: its encoders as they were before training, without the
trained head.

A servable is encoders -> head. When no encoder trained (a head on frozen encoders), one
encoder pass gives both what the frozen encoder returns (the baseline a trained model is judged
against) and, through the head, what the servable returns. An encoder whose top layers trained
(`trainable_layers`) is rebuilt frozen from the original model it recorded; without that model
the baseline is refused rather than computed with the trained layers.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from quaterion_models import SimilarityModel
from quaterion_models.heads import EmptyHead
from quaterion_models.utils.tensors import first_device

BASELINE_FIX = (
    "or leave the baseline out (`quaterion evaluate` without --baseline, `quaterion index` "
    "with --no-baseline)"
)


def frozen_baseline(model: SimilarityModel) -> SimilarityModel:
    """A model of `model`'s encoders as they were before training, with an identity head:
    frozen encoders are shared (not copied), partly trained ones are rebuilt from their
    original model (`frozen_original`).

    Args:
        model: a trained servable.

    Raises:
        ValueError: an encoder's top layers trained and its original model is not recorded or
            not available (the baseline would be wrong).
    """
    encoders = {}
    for name, encoder in model.encoders.items():
        original = getattr(encoder, "frozen_original", None)
        try:
            encoders[name] = encoder if original is None else original()
            if encoders[name] is not encoder:  # rebuilt on the CPU: where the servable runs
                encoders[name].to(first_device(encoder))
        except FileNotFoundError as error:
            raise ValueError(
                f"No frozen baseline for encoder {name!r}: {error}; {BASELINE_FIX}"
            ) from error
    return SimilarityModel(encoders=encoders, head=EmptyHead(model.head.input_embedding_size))


def _shares_encoders(model: SimilarityModel, baseline: SimilarityModel) -> bool:
    return all(baseline.encoders[name] is encoder for name, encoder in model.encoders.items())


def encode_with_baseline(
    model: SimilarityModel,
    objects: list[Any],
    batch_size: int = 64,
    show_progress: bool = False,
    baseline: SimilarityModel | None = None,
) -> tuple[Tensor, Tensor]:
    """(frozen encoders' embeddings `[N, D_in]`, servable's embeddings `[N, D_out]`) of
    `objects`, from one encoder pass when no encoder trained (two otherwise); pass `baseline`
    (from `frozen_baseline`) to reuse it.

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
    if not _shares_encoders(model, baseline):  # trained encoder layers: encode again
        after = model.encode(
            objects, batch_size=batch_size, to_numpy=False, show_progress=show_progress
        )
        return before, after
    head = model.head
    training = head.training
    head.eval()
    try:
        with torch.no_grad():
            after = head(before)
    finally:
        head.train(training)
    return before, after
