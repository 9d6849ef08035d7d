"""Head that returns its input unchanged."""

from __future__ import annotations

from torch import Tensor

from quaterion_models.heads.encoder_head import EncoderHead


class EmptyHead(EncoderHead):
    """Identity: use the encoders' embeddings as they are (dropout still applies).

    Args:
        input_embedding_size: width of the encoders' concatenated output (the value `configure_head`
            receives).
        dropout: dropout probability applied to the head's input, in [0, 1).
    """

    def __init__(self, input_embedding_size: int, dropout: float = 0.0):
        super().__init__(input_embedding_size, dropout=dropout)

    @property
    def output_size(self) -> int:
        return self.input_embedding_size

    def transform(self, input_vectors: Tensor) -> Tensor:
        return input_vectors
