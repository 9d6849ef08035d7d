"""Combine the per-encoder meta lists of a batch into one meta dict per record."""

from __future__ import annotations


def merge_meta(meta: dict[str, list[dict]]) -> list[dict]:
    """Item-wise union of each encoder's meta lists.

    `{"a": [{"x": 1}], "b": [{"y": 2}]}` -> `[{"x": 1, "y": 2}]`.

    Returns new dicts (the input is not modified); later encoders win on key clashes.

    Args:
        meta: encoder key -> one dict per record.

    Returns:
        one merged dict per record.
    """
    lengths = {name: len(items) for name, items in meta.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(
            f"Every encoder must give one meta dict per record, got list lengths {lengths}"
        )
    n_items = next(iter(lengths.values()), 0)
    merged: list[dict] = [{} for _ in range(n_items)]
    for items in meta.values():
        for target, item in zip(merged, items, strict=True):
            target.update(item)
    return merged
