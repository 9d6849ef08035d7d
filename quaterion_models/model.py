"""`SimilarityModel`: encoders -> concatenated embeddings -> head; `encode`; servable I/O."""

from __future__ import annotations

import os
from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from quaterion_models.encoders.encoder import Encoder
from quaterion_models.heads.encoder_head import EncoderHead
from quaterion_models.types import CollateFnType, MetaExtractorFnType, TensorInterchange
from quaterion_models.utils.batching import length_order
from quaterion_models.utils.classes import (
    check_plain_key,
    restore_subclass,
    save_class_import,
    trusting_modules,
)
from quaterion_models.utils.files import (
    CorruptFileError,
    atomic_directory,
    directory_manifest,
    member_file,
    read_json,
    verify_manifest,
    write_json_atomic,
)
from quaterion_models.utils.meta import merge_meta
from quaterion_models.utils.progress import track
from quaterion_models.utils.tensors import first_device, move_to_device

DEFAULT_ENCODER_KEY = "default"
CONFIG_FILE = "config.json"


class SimilarityModel(nn.Module):
    """Maps raw records to embeddings: each encoder embeds the batch, the embeddings are
    concatenated in sorted key order, and the head turns them into the final vectors.

    A single encoder is stored under the key `"default"`. Non-trainable encoders are frozen.

    Args:
        encoders: one encoder (stored under the key `"default"`) or a dict of named encoders; their
            outputs are concatenated in sorted key order.
        head: the head applied to the concatenated outputs.
    """

    def __init__(self, encoders: Encoder | dict[str, Encoder], head: EncoderHead):
        super().__init__()
        if not isinstance(encoders, dict):
            encoders = {DEFAULT_ENCODER_KEY: encoders}
        if not encoders:
            raise ValueError("SimilarityModel needs at least one encoder")
        self.head = head
        self.encoders: dict[str, Encoder] = {}
        for key, encoder in encoders.items():
            if not isinstance(key, str) or not key or "." in key or hasattr(self, key):
                raise ValueError(
                    f"Invalid encoder key {key!r}: use a non-empty string without '.' that is "
                    "not an attribute of SimilarityModel (such as 'head' or 'encoders')"
                )
            encoder.disable_gradients_if_required()
            self.add_module(key, encoder)
            self.encoders[key] = encoder

    @classmethod
    def collate_fn(
        cls,
        batch: list[Any],
        encoders_collate_fns: dict[str, CollateFnType],
        meta_extractors: dict[str, MetaExtractorFnType],
    ) -> dict[str, Any]:
        """Raw records -> `{"data": {key: encoder input}, "meta": [one dict per record]}`.

        Args:
            batch: raw records.
            encoders_collate_fns: each encoder's collate function, by encoder key.
            meta_extractors: each encoder's meta extractor, by encoder key.

        Returns:
            the batch `model(...)` takes.
        """
        return {
            "data": {key: collate(batch) for key, collate in encoders_collate_fns.items()},
            "meta": merge_meta({key: extract(batch) for key, extract in meta_extractors.items()}),
        }

    def get_collate_fn(self) -> CollateFnType:
        """Picklable collate function for data loaders (does not hold the model)."""
        return partial(
            type(self).collate_fn,
            encoders_collate_fns={
                key: encoder.get_collate_fn() for key, encoder in self.encoders.items()
            },
            meta_extractors={
                key: encoder.get_meta_extractor() for key, encoder in self.encoders.items()
            },
        )

    @classmethod
    def get_encoders_output_size(cls, encoders: Encoder | dict[str, Encoder]) -> int:
        """Width of the concatenated encoder outputs (the head's input width).

        Args:
            encoders: one encoder or a dict of named encoders.

        Returns:
            the sum of their `embedding_size`s.
        """
        if isinstance(encoders, dict):
            return sum(encoder.embedding_size for encoder in encoders.values())
        return encoders.embedding_size

    def forward(self, batch: dict[str, TensorInterchange]) -> Tensor:
        """Embeddings of a collated batch: every encoder, concatenated, then the head.

        Args:
            batch: `{"data": {key: encoder input}, "meta": [...]}`, as `get_collate_fn()` builds it.

        Returns:
            `(B, head.output_size)` embeddings.
        """
        embeddings = [
            self.encoders[key](batch["data"][key]) for key in sorted(self.encoders)
        ]  # each (B, D_key)
        return self.head(torch.cat(embeddings, dim=1), meta=batch["meta"])

    def encode(
        self,
        inputs: list[Any] | Any,
        batch_size: int = 32,
        to_numpy: bool = True,
        show_progress: bool = False,
    ) -> np.ndarray | Tensor:
        """Embed raw records in batches, in eval mode and without gradients.

        A non-list input is one record (`(1, output_size)` back). Returns `(N, output_size)`,
        as numpy or as a tensor on the model's device. Texts are batched by length, longest
        first (padding to each batch's longest text then costs little), and returned in the
        order given. Each submodule's train/eval mode is restored afterwards.

        Args:
            inputs: a list of raw records, or one record.
            batch_size: records encoded at once.
            to_numpy: return a numpy array instead of a tensor.
            show_progress: draw a progress bar.

        Returns:
            `(N, output_size)` embeddings: numpy, or a tensor on the model's device.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        records = inputs if isinstance(inputs, list) else [inputs]
        order = length_order(records)
        device = first_device(self)
        collate = self.get_collate_fn()
        modes = [(module, module.training) for module in self.modules()]
        self.eval()
        try:
            with torch.no_grad():
                batches = (
                    self._collate(
                        collate,
                        [records[i] for i in order[start : start + batch_size]]
                        if order is not None
                        else records[start : start + batch_size],
                    )
                    for start in track(
                        range(0, len(records), batch_size),
                        description="Encoding",
                        enabled=show_progress,
                    )
                )
                chunks = [self(move_to_device(batch, device)) for batch in batches]
        finally:
            for module, training in modes:  # per module: some may have been in eval mode
                module.training = training
        if chunks:
            embeddings = torch.cat(chunks)
            if order is not None:  # back to the caller's order
                embeddings = embeddings[torch.argsort(torch.as_tensor(order, device=device))]
        else:
            embeddings = torch.empty((0, self.head.output_size), device=device)
        if records is not inputs:  # one record: drop the batch axis it was given
            embeddings = torch.atleast_2d(embeddings.squeeze(0))
        return embeddings.cpu().numpy() if to_numpy else embeddings

    def _collate(self, collate: CollateFnType, records: list[Any]) -> dict[str, Any]:
        """`collate(records)`; a failure is re-raised naming the encoder that cannot take them."""
        try:
            return collate(records)
        except Exception as exc:
            received = ", ".join(sorted({type(record).__name__ for record in records}))
            for key, encoder in self.encoders.items():  # error path only: find the culprit
                try:
                    encoder.get_collate_fn()(records)
                except Exception:
                    raise TypeError(
                        f"Encoder {key!r} ({type(encoder).__name__}) cannot collate records of "
                        f"type {received} ({type(exc).__name__}: {exc}); pass records of the "
                        "type its collate function expects"
                    ) from exc
            raise

    def save(self, output_path: str | os.PathLike) -> None:
        """Write the servable directory atomically (an existing servable there is replaced).

        Layout: `config.json` (class paths and a size + sha256 manifest of every other file),
        `head/` (head config + safetensors weights), `encoders/<key>/` (whatever each
        encoder's `save` writes).

        Args:
            output_path: directory to write (created, or replaced when it holds a servable).
        """
        target = Path(output_path)
        if target.is_dir() and any(target.iterdir()) and not (target / CONFIG_FILE).is_file():
            raise FileExistsError(
                f"{target} is a non-empty directory that is not a saved model; "
                "save into a new or empty directory (or a previous save of a model)"
            )
        with atomic_directory(target) as staging:
            self.head.save(str(staging / "head"))
            for key, encoder in self.encoders.items():
                encoder_path = staging / "encoders" / key
                encoder_path.mkdir(parents=True)
                encoder.save(str(encoder_path))
            config = {
                "encoders": [
                    {"key": key, **save_class_import(encoder)}
                    for key, encoder in self.encoders.items()
                ],
                "head": save_class_import(self.head),
                "files": directory_manifest(staging),
            }
            write_json_atomic(staging / CONFIG_FILE, config)

    @classmethod
    def load(
        cls, input_path: str | os.PathLike, trusted_modules: Iterable[str] = ()
    ) -> SimilarityModel:
        """Rebuild a model saved by `save`, on the CPU.

        Trust model: a servable directory may come from someone else, so
        - `config.json` may name head and encoder classes, but their modules are imported only
          when they are in `quaterion` or `quaterion_models`, or in `trusted_modules` (module or
          package names the caller trusts, e.g. `["my_service.encoders"]`), because importing
          a module runs its code (`UntrustedModuleError` otherwise, before any import); only
          subclasses of `EncoderHead` / `Encoder` are then accepted (TypeError otherwise);
        - every file in the directory besides `config.json` must be listed in its manifest
          with the size and checksum written at save time, as a plain path inside the
          directory (no `..`, no absolute path, no link leading out) to a regular file (no
          FIFO or device): loaders read only checked files (`CorruptFileError` otherwise);
        - loading never unpickles: the built-in heads and encoders read JSON and safetensors
          only; a custom `Encoder.load` must do the same.

        Args:
            input_path: a directory written by `save`.
            trusted_modules: modules (and packages) whose classes a config may name besides
                `quaterion` and `quaterion_models`, imported when named.

        Returns:
            the model, on the CPU.
        """
        root = Path(input_path)
        if not root.is_dir():
            raise FileNotFoundError(f"No saved model at {root}: the directory does not exist")
        config_path = root / CONFIG_FILE
        if os.path.lexists(config_path):  # a missing config gets read_json's clearer error
            member_file(root, CONFIG_FILE, "saved model")
        config = read_json(config_path, "model config")
        if not isinstance(config, dict) or not {"head", "encoders"} <= config.keys():
            raise CorruptFileError(
                f"Model config {config_path} lacks the 'head' or 'encoders' entries; "
                "it was not written by SimilarityModel.save"
            )
        verify_manifest(root, config.get("files"), "saved model", unlisted=(CONFIG_FILE,))
        source = f"Model config {config_path}"
        with trusting_modules(trusted_modules):  # nested loads (switch encoders) see it too
            head_class = restore_subclass(config["head"], EncoderHead, source)
            encoder_classes = {
                check_plain_key(record.get("key"), source): restore_subclass(
                    record, Encoder, source
                )
                for record in config["encoders"]
            }
            head = head_class.load(str(root / "head"))
            encoders = {
                key: encoder_class.load(str(root / "encoders" / key))
                for key, encoder_class in encoder_classes.items()
            }
        return cls(encoders=encoders, head=head)


MetricModel = SimilarityModel
"""Alias kept for code written against early versions."""
