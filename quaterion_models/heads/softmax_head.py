"""Projection into groups of softmax-normalised values."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from quaterion_models.heads.encoder_head import EncoderHead


class SoftmaxEmbeddingsHead(EncoderHead):
    """Linear projection to `output_groups * output_size_per_group`, softmax within each group.

    Each group of `output_size_per_group` values sums to 1. Works on `(B, ..., D)` inputs.

    Args:
        output_groups: number of groups `G` of output values.
        output_size_per_group: values per group `S`; each group sums to 1.
        input_embedding_size: width of the encoders' concatenated output (the value `configure_head`
            receives).
        dropout: dropout probability applied to the head's input, in [0, 1).
        **kwargs: passed to `EncoderHead` (ignored there).
    """

    def __init__(
        self,
        output_groups: int,
        output_size_per_group: int,
        input_embedding_size: int,
        dropout: float = 0.0,
        **kwargs: Any,
    ):
        super().__init__(input_embedding_size, dropout=dropout, **kwargs)
        self.output_groups = output_groups
        self.output_size_per_group = output_size_per_group
        self.projection_layer = nn.Linear(
            input_embedding_size, output_groups * output_size_per_group
        )

    @property
    def output_size(self) -> int:
        return self.output_groups * self.output_size_per_group

    def transform(self, input_vectors: Tensor) -> Tensor:
        projected = self.projection_layer(input_vectors)  # (..., G * S)
        grouped = projected.view(*projected.shape[:-1], self.output_groups, -1)  # (..., G, S)
        return grouped.softmax(dim=-1).view(projected.shape)  # (..., G * S)

    def get_config_dict(self) -> dict[str, Any]:
        return {
            **super().get_config_dict(),
            "output_groups": self.output_groups,
            "output_size_per_group": self.output_size_per_group,
        }
