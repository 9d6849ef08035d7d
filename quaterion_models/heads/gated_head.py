"""Per-dimension learned gate."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from quaterion_models.heads.encoder_head import EncoderHead


class GatedHead(EncoderHead):
    """`x * tanh(gates)`, one gate per dimension.

    Gates start at 2.0 (tanh = 0.964), so the head starts close to the identity and learns
    to damp dimensions that hurt similarity.

    Args:
        input_embedding_size: width of the encoders' concatenated output (the value `configure_head`
            receives).
        dropout: dropout probability applied to the head's input, in [0, 1).
    """

    def __init__(self, input_embedding_size: int, dropout: float = 0.0):
        super().__init__(input_embedding_size, dropout=dropout)
        self.gates = nn.Parameter(torch.empty(input_embedding_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Set every gate back to 2.0 (tanh = 0.964: close to the identity)."""
        nn.init.constant_(self.gates, 2.0)

    @property
    def output_size(self) -> int:
        return self.input_embedding_size

    def transform(self, input_vectors: Tensor) -> Tensor:
        return input_vectors * torch.tanh(self.gates)
