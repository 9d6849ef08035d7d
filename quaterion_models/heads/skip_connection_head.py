"""Residual linear layers behind learned gates."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from quaterion_models.heads.encoder_head import EncoderHead


class SkipConnectionHead(EncoderHead):
    """`n_layers` times: `x = fc_i(skip_dropout(x)) * sigmoid(gates_i) + x`.

    ```
    x ──┬── skip_dropout ── fc_i ── * sigmoid(gates_i) ──(+)── x'
        └──────────────────────────────────────────────────┘
    ```
    Gates start at -4.0 (sigmoid = 0.018), so the head starts close to the identity.

    Args:
        input_embedding_size: width of the encoders' concatenated output (the value `configure_head`
            receives).
        dropout: dropout probability applied to the head's input, in [0, 1).
        skip_dropout: dropout probability applied to the input of each linear layer `fc_i` (the skip
            path keeps the undropped input).
        n_layers: number of gated residual layers, at least 1.
    """

    def __init__(
        self,
        input_embedding_size: int,
        dropout: float = 0.0,
        skip_dropout: float = 0.0,
        n_layers: int = 1,
    ):
        super().__init__(input_embedding_size, dropout=dropout)
        if n_layers < 1:
            raise ValueError(f"n_layers must be at least 1, got {n_layers}")
        self._skip_dropout_prob = skip_dropout
        self._n_layers = n_layers
        self.skip_dropout: nn.Module = (
            nn.Dropout(p=skip_dropout) if skip_dropout > 0.0 else nn.Identity()
        )
        for index in range(n_layers):
            gates = nn.Parameter(torch.empty(input_embedding_size))
            setattr(self, f"gates_{index}", gates)
            setattr(self, f"fc_{index}", nn.Linear(input_embedding_size, input_embedding_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise the gates (the linear layers keep their weights)."""
        for index in range(self._n_layers):
            nn.init.constant_(getattr(self, f"gates_{index}"), -4.0)

    @property
    def output_size(self) -> int:
        return self.input_embedding_size

    def transform(self, input_vectors: Tensor) -> Tensor:
        for index in range(self._n_layers):
            fc = getattr(self, f"fc_{index}")
            gates = getattr(self, f"gates_{index}")
            input_vectors = (
                fc(self.skip_dropout(input_vectors)) * torch.sigmoid(gates) + input_vectors
            )
        return input_vectors

    def get_config_dict(self) -> dict[str, Any]:
        return {
            **super().get_config_dict(),
            "skip_dropout": self._skip_dropout_prob,
            "n_layers": self._n_layers,
        }
