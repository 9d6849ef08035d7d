"""Tensor helpers for losses and metrics (masks, dtype limits, normalisation)."""

from quaterion.utils.utils import (
    get_anchor_negative_mask,
    get_anchor_positive_mask,
    get_masked_maximum,
    get_masked_minimum,
    get_triplet_mask,
    info_value_of_dtype,
    l2_norm,
    max_value_of_dtype,
    min_value_of_dtype,
)

__all__ = [
    "get_anchor_negative_mask",
    "get_anchor_positive_mask",
    "get_masked_maximum",
    "get_masked_minimum",
    "get_triplet_mask",
    "info_value_of_dtype",
    "l2_norm",
    "max_value_of_dtype",
    "min_value_of_dtype",
]
