"""Expand, activate, project back: a two-layer MLP with the input width at both ends."""

from __future__ import annotations

from typing import Any

from quaterion_models.heads.stacked_projection_head import StackedProjectionHead


class WideningHead(StackedProjectionHead):
    """`Linear(D, int(D * expansion_factor)) -> act -> Linear(.., D)`; output width is D.

    Extra keyword arguments are accepted and ignored, so configs written by older versions
    (which also stored `output_sizes`) still load.

    Args:
        input_embedding_size: width of the encoders' concatenated output (the value `configure_head`
            receives).
        expansion_factor: width of the hidden layer, as a multiple of the input width.
        activation_fn: name of a `torch.nn.functional` activation between the two layers.
        dropout: dropout probability applied to the head's input, in [0, 1).
        **kwargs: ignored (configs of older versions stored `output_sizes`).
    """

    def __init__(
        self,
        input_embedding_size: int,
        expansion_factor: float = 4.0,
        activation_fn: str = "relu",
        dropout: float = 0.0,
        **kwargs: Any,
    ):
        super().__init__(
            input_embedding_size=input_embedding_size,
            output_sizes=[int(input_embedding_size * expansion_factor), input_embedding_size],
            activation_fn=activation_fn,
            dropout=dropout,
        )
        self._expansion_factor = expansion_factor

    def get_config_dict(self) -> dict[str, Any]:
        config = super().get_config_dict()
        del config["output_sizes"]
        return {**config, "expansion_factor": self._expansion_factor}
