"""One linear projection."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from quaterion_models.heads.encoder_head import EncoderHead


class LinearHead(EncoderHead):
    """`x @ W.T + b`: `(B, input_embedding_size)` -> `(B, output_size)`.

    `output_size=None` keeps the input width.

    Args:
        input_embedding_size: width of the encoders' concatenated output (the value `configure_head`
            receives).
        output_size: output width; None keeps the input width.
        bias: learn an additive bias `b`.
        dropout: dropout probability applied to the head's input, in [0, 1).
    """

    def __init__(
        self,
        input_embedding_size: int,
        output_size: int | None = None,
        bias: bool = True,
        dropout: float = 0.0,
    ):
        super().__init__(input_embedding_size, dropout=dropout)
        self._output_size = input_embedding_size if output_size is None else output_size
        self._bias = bias
        self.layer = nn.Linear(input_embedding_size, self._output_size, bias=bias)

    @property
    def output_size(self) -> int:
        return self._output_size

    def transform(self, input_vectors: Tensor) -> Tensor:
        return self.layer(input_vectors)

    def get_config_dict(self) -> dict[str, Any]:
        return {**super().get_config_dict(), "output_size": self._output_size, "bias": self._bias}
