"""Base class of every head (the trainable layer on top of the concatenated embeddings)."""

from __future__ import annotations

import os
from typing import Any

from torch import Tensor, nn

from quaterion_models.utils.files import (
    load_tensors,
    read_json,
    save_tensors_atomic,
    write_json_atomic,
)

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"


class EncoderHead(nn.Module):
    """`forward(x, meta) = transform(dropout(x))`, `(B, input_size) -> (B, output_size)`.

    A subclass implements `transform` and `output_size`, and extends `get_config_dict` with
    its own constructor arguments, so that `cls(**get_config_dict())` rebuilds it.
    On disk a head is `config.json` (the config dict) + `weights.safetensors` (state dict).

    Args:
        input_embedding_size: width of the encoders' concatenated output (the value `configure_head`
            receives).
        dropout: dropout probability applied to the head's input, in [0, 1).
        **kwargs: ignored, so that configs of older versions with extra keys still load.
    """

    def __init__(self, input_embedding_size: int, dropout: float = 0.0, **kwargs: Any):
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.input_embedding_size = input_embedding_size
        self._dropout_prob = dropout
        self.dropout: nn.Module = nn.Dropout(p=dropout) if dropout > 0.0 else nn.Identity()

    @property
    def output_size(self) -> int:
        """Width of the vectors the head returns."""
        raise NotImplementedError(f"{type(self).__name__} must define the `output_size` property")

    def transform(self, input_vectors: Tensor) -> Tensor:
        """The head's computation on already-dropped-out inputs.

        Args:
            input_vectors: `(B, input_embedding_size)` embeddings, dropout already applied.

        Returns:
            `(B, output_size)` embeddings.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement `transform`")

    def forward(self, input_vectors: Tensor, meta: list[Any] | None = None) -> Tensor:
        """`transform(dropout(input_vectors))`: the head applied to a batch.

        Args:
            input_vectors: `(B, input_embedding_size)` concatenated encoder outputs.
            meta: one dict per row from the encoders' meta extractors (used by `SwitchHead`).

        Returns:
            `(B, output_size)` embeddings.
        """
        return self.transform(self.dropout(input_vectors))

    def get_config_dict(self) -> dict[str, Any]:
        """Constructor keyword arguments, as JSON values."""
        return {"input_embedding_size": self.input_embedding_size, "dropout": self._dropout_prob}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> EncoderHead:
        """A freshly initialised head built from `get_config_dict()` output.

        Args:
            config: a dict returned by `get_config_dict()`.

        Returns:
            a new head with freshly initialised weights.
        """
        return cls(**config)

    def save(self, output_path: str) -> None:
        """Write `config.json` and `weights.safetensors` into `output_path` (created if needed).

        Args:
            output_path: directory to write into.
        """
        os.makedirs(output_path, exist_ok=True)
        write_json_atomic(os.path.join(output_path, CONFIG_FILE), self.get_config_dict())
        save_tensors_atomic(self.state_dict(), os.path.join(output_path, WEIGHTS_FILE))

    @classmethod
    def load(cls, input_path: str) -> EncoderHead:
        """Rebuild a head saved by `save`; weights land on the CPU.

        Args:
            input_path: a directory written by `save`.

        Returns:
            the head, with its saved weights.
        """
        config = read_json(os.path.join(input_path, CONFIG_FILE), f"{cls.__name__} config")
        head = cls.from_config(config)
        weights_path = os.path.join(input_path, WEIGHTS_FILE)
        state = load_tensors(weights_path)
        missing, unexpected = head.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ValueError(
                f"Weights in {weights_path} do not match {cls.__name__}{config}: "
                f"missing {sorted(missing)}, unexpected {sorted(unexpected)}"
            )
        return head
