"""A stack of linear layers with an activation between them."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from quaterion_models.heads.encoder_head import EncoderHead
from quaterion_models.modules.simple import ActivationFromFnName


class StackedProjectionHead(EncoderHead):
    """`Linear(D, o0) -> act -> Linear(o0, o1) -> ... -> Linear(o_{n-2}, o_{n-1})`.

    The activation (a `torch.nn.functional` name) sits between layers only, not at the end.

    Args:
        input_embedding_size: width of the encoders' concatenated output (the value `configure_head`
            receives).
        output_sizes: output width of each linear layer, in order; the last one is the head's output
            width.
        activation_fn: name of a `torch.nn.functional` activation applied between layers, e.g.
            `"relu"`.
        dropout: dropout probability applied to the head's input, in [0, 1).
    """

    def __init__(
        self,
        input_embedding_size: int,
        output_sizes: list[int],
        activation_fn: str = "relu",
        dropout: float = 0.0,
    ):
        super().__init__(input_embedding_size, dropout=dropout)
        if not output_sizes:
            raise ValueError("output_sizes must list at least one layer width")
        self._output_sizes = list(output_sizes)
        self._activation_fn = activation_fn
        layers: list[nn.Module] = []
        widths = [input_embedding_size, *self._output_sizes]
        for index, (width_in, width_out) in enumerate(zip(widths, widths[1:], strict=False)):
            if index > 0:
                layers.append(ActivationFromFnName(activation_fn))
            layers.append(nn.Linear(width_in, width_out))
        self._stack = nn.Sequential(*layers)

    @property
    def output_size(self) -> int:
        return self._output_sizes[-1]

    def transform(self, input_vectors: Tensor) -> Tensor:
        return self._stack(input_vectors)

    def get_config_dict(self) -> dict[str, Any]:
        return {
            **super().get_config_dict(),
            "output_sizes": self._output_sizes,
            "activation_fn": self._activation_fn,
        }
