"""Type aliases shared by encoders, heads and collate functions."""

from collections.abc import Callable
from typing import Any, Union

from torch import Tensor

TensorInterchange = Union[
    Tensor, tuple[Tensor], list[Tensor], dict[str, Tensor], dict[str, dict], Any
]
"""Whatever a collate function hands to an encoder's `forward`."""

CollateFnType = Callable[[list[Any]], TensorInterchange]
"""Turns a list of raw records into an encoder's input batch."""

MetaExtractorFnType = Callable[[list[Any]], list[dict]]
"""Turns a list of raw records into one meta dict per record (read by heads)."""

__all__ = ["TensorInterchange", "CollateFnType", "MetaExtractorFnType"]
