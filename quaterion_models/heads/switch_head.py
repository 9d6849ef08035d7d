"""Head that applies a different sub-head to each row, chosen by the row's meta."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from quaterion_models.encoders.switch_encoder import inverse_permutation
from quaterion_models.heads.encoder_head import EncoderHead
from quaterion_models.utils.classes import check_plain_key, restore_subclass, save_class_import


class SwitchHead(EncoderHead):
    """Row `i` goes through `options[meta[i]["encoder"]]` (pairs with `SwitchEncoder`).

    Output rows keep the input order. All options must have the same `output_size`.

    Args:
        options: a head per encoder key of the `SwitchEncoder`; all with the same `output_size`.
        input_embedding_size: width of the encoders' concatenated output (the value `configure_head`
            receives).
        **kwargs: ignored (configs of older versions).
    """

    def __init__(self, options: dict[str, EncoderHead], input_embedding_size: int, **kwargs: Any):
        super().__init__(input_embedding_size, dropout=0.0)
        if not options:
            raise ValueError("SwitchHead needs at least one option head")
        sizes = {key: head.output_size for key, head in options.items()}
        if len(set(sizes.values())) > 1:
            raise ValueError(f"SwitchHead options must share one output_size, got {sizes}")
        self._heads = dict(options)
        for key, head in self._heads.items():
            if hasattr(self, key):
                raise ValueError(f"SwitchHead option key {key!r} clashes with an attribute name")
            self.add_module(key, head)

    @property
    def output_size(self) -> int:
        return next(iter(self._heads.values())).output_size

    def forward(self, input_vectors: Tensor, meta: list[Any] | None = None) -> Tensor:
        return self.transform(input_vectors, meta=meta)

    def transform(self, input_vectors: Tensor, meta: list[Any] | None = None) -> Tensor:
        """Route rows by `meta[i]["encoder"]` through the options' `forward`.

        Args:
            input_vectors: `(B, input_embedding_size)` embeddings.
            meta: one dict per row; `meta[i]["encoder"]` names the option for row `i`.

        Returns:
            `(B, output_size)` embeddings, rows in input order.
        """
        if meta is None or len(meta) != len(input_vectors):
            got = "None" if meta is None else f"{len(meta)} entries"
            raise ValueError(
                f"SwitchHead needs one meta dict with an 'encoder' key per row "
                f"({len(input_vectors)} rows), got {got}; pair it with a SwitchEncoder"
            )
        rows: dict[str, list[int]] = {key: [] for key in self._heads}
        for index, item in enumerate(meta):
            key = item.get("encoder") if isinstance(item, dict) else None
            if key not in rows:
                raise ValueError(
                    f"Row {index}: meta {item!r} does not name one of the SwitchHead options "
                    f"{sorted(rows)} under 'encoder'"
                )
            rows[key].append(index)
        outputs, order = [], []
        for key, indices in rows.items():
            if indices:
                sub_meta = [meta[index] for index in indices]
                outputs.append(self._heads[key](input_vectors[indices], meta=sub_meta))
                order.extend(indices)
        if not outputs:
            return input_vectors.new_empty((0, self.output_size))
        permutation = torch.tensor(order, dtype=torch.long, device=input_vectors.device)
        return torch.cat(outputs)[inverse_permutation(permutation)]

    def get_config_dict(self) -> dict[str, Any]:
        return {
            "heads": {
                key: {"config": head.get_config_dict(), "class": save_class_import(head)}
                for key, head in self._heads.items()
            },
            "input_embedding_size": self.input_embedding_size,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> SwitchHead:
        source = "SwitchHead config"
        classes = {
            check_plain_key(key, source): restore_subclass(record["class"], EncoderHead, source)
            for key, record in config["heads"].items()
        }  # all checked before any option's `from_config` runs
        options = {
            key: head_class.from_config(config["heads"][key]["config"])
            for key, head_class in classes.items()
        }
        return cls(options=options, input_embedding_size=config["input_embedding_size"])
