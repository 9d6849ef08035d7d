"""Batching records by length: texts pad to the longest of their batch, so similar lengths
batched together pad little."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def length_order(records: Sequence[Any]) -> list[int] | None:
    """Positions of `records`, longest first, when they are all texts; None otherwise (their
    order then does not matter to padding).

    Args:
        records: raw records.
    """
    if not records or not all(isinstance(record, str) for record in records):
        return None
    return sorted(range(len(records)), key=lambda i: -len(records[i]))
