"""An encoder that routes each record to one of several encoders with equal output width."""

from __future__ import annotations

import os
from functools import partial
from typing import Any

import torch
from torch import Tensor

from quaterion_models.encoders.encoder import Encoder
from quaterion_models.types import CollateFnType
from quaterion_models.utils.classes import check_plain_key, restore_subclass, save_class_import
from quaterion_models.utils.files import read_json, write_json_atomic


def inverse_permutation(perm: Tensor) -> Tensor:
    """`inv` such that `inv[perm[i]] == i`.

    Args:
        perm: a permutation of `0..n-1`, `(n,)`.

    Returns:
        its inverse, `(n,)`.
    """
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(perm.size(0), dtype=perm.dtype, device=perm.device)
    return inverse


class SwitchEncoder(Encoder):
    """Picks an encoder per record with `encoder_selection(record) -> key`.

    Example: texts go to a text encoder, images to an image encoder, both producing vectors
    of the same width. Meta of each record is `{"encoder": key}`, so a `SwitchHead` can
    route the embedding to a per-encoder head.

    Args:
        options: the encoders to choose from, by key; all with the same `embedding_size`.
    """

    def __init__(self, options: dict[str, Encoder]):
        super().__init__()
        if not options:
            raise ValueError("SwitchEncoder needs at least one option encoder")
        sizes = {encoder.embedding_size for encoder in options.values()}
        if len(sizes) > 1:
            raise RuntimeError(
                f"SwitchEncoder options have inconsistent output size: {sorted(sizes)}; "
                "every option must produce embeddings of the same width"
            )
        self.options = dict(options)
        for key, encoder in self.options.items():
            self.add_module(key, encoder)

    @classmethod
    def encoder_selection(cls, record: Any) -> str:
        """Key of the option that encodes `record`.

        Args:
            record: one raw record.

        Returns:
            a key of `options`.
        """
        raise NotImplementedError(f"{cls.__name__} must implement `encoder_selection`")

    @property
    def trainable(self) -> bool:
        return any(encoder.trainable for encoder in self.options.values())

    @property
    def embedding_size(self) -> int:
        return next(iter(self.options.values())).embedding_size

    def disable_gradients_if_required(self) -> None:
        for encoder in self.options.values():
            encoder.disable_gradients_if_required()

    @classmethod
    def switch_collate_fn(
        cls, batch: list[Any], encoder_collates: dict[str, CollateFnType]
    ) -> dict[str, dict]:
        """Group records by option: `{"ordering": {key: [index]}, "batches": {key: collated}}`.

        Args:
            batch: raw records.
            encoder_collates: each option's collate function, by key.

        Returns:
            the batch `forward` takes.
        """
        ordering: dict[str, list[int]] = {key: [] for key in encoder_collates}
        records: dict[str, list[Any]] = {key: [] for key in encoder_collates}
        for index, record in enumerate(batch):
            key = cls.encoder_selection(record)
            if key not in records:
                raise ValueError(
                    f"{cls.__name__}.encoder_selection returned {key!r}, which is not one of "
                    f"the options {sorted(records)}"
                )
            ordering[key].append(index)
            records[key].append(record)
        return {
            "ordering": ordering,
            "batches": {
                key: encoder_collates[key](items) for key, items in records.items() if items
            },
        }

    def get_collate_fn(self) -> CollateFnType:
        return partial(
            type(self).switch_collate_fn,
            encoder_collates={key: enc.get_collate_fn() for key, enc in self.options.items()},
        )

    @classmethod
    def extract_meta(cls, batch: list[Any]) -> list[dict]:
        return [{"encoder": cls.encoder_selection(record)} for record in batch]

    def forward(self, batch: dict[str, dict]) -> Tensor:
        embeddings = []
        order = []
        for key, sub_batch in batch["batches"].items():
            embeddings.append(self.options[key](sub_batch))
            order.extend(batch["ordering"][key])
        joined = torch.cat(embeddings)
        permutation = torch.tensor(order, dtype=torch.long, device=joined.device)
        return joined[inverse_permutation(permutation)]

    def save(self, output_path: str) -> None:
        for key, encoder in self.options.items():
            option_path = os.path.join(output_path, key)
            os.makedirs(option_path, exist_ok=True)
            encoder.save(option_path)
        config = {"encoders": {key: save_class_import(enc) for key, enc in self.options.items()}}
        write_json_atomic(os.path.join(output_path, "config.json"), config)

    @classmethod
    def load(cls, input_path: str) -> Encoder:
        config_path = os.path.join(input_path, "config.json")
        config = read_json(config_path, "SwitchEncoder config")
        source = f"SwitchEncoder config {config_path}"
        classes = {
            check_plain_key(key, source): restore_subclass(record, Encoder, source)
            for key, record in config["encoders"].items()
        }  # all checked before any option's `load` runs
        options = {
            key: option_class.load(os.path.join(input_path, key))
            for key, option_class in classes.items()
        }
        return cls(options=options)
