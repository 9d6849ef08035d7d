"""Head made of any sequence of (supported) torch.nn layers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from torch import Tensor, nn

from quaterion_models.heads.encoder_head import EncoderHead
from quaterion_models.modules.layer_specs import layer_from_spec, layer_to_spec


class SequentialHead(EncoderHead):
    """`nn.Sequential(*args)` as a head; `output_size` must be given (keyword-only).

    Behaves like the wrapped Sequential for indexing, assignment, deletion, `len`, iteration
    and `append`. Saved without pickling: `get_config_dict()["layers"]` describes each layer
    (see `quaterion_models.modules.layer_specs` for the supported ones), weights go to
    safetensors.

    Args:
        *args: the layers, in order, as for `nn.Sequential`.
        output_size: width of the last layer's output (keyword-only; it cannot be inferred).
        dropout: dropout probability applied to the head's input, in [0, 1).
    """

    def __init__(self, *args: nn.Module, output_size: int, dropout: float = 0.0):
        super().__init__(None, dropout=dropout)  # type: ignore[arg-type]
        self._output_size = output_size
        self._sequential = nn.Sequential(*args)

    @property
    def output_size(self) -> int:
        return self._output_size

    def transform(self, input_vectors: Tensor) -> Tensor:
        return self._sequential(input_vectors)

    def append(self, module: nn.Module) -> SequentialHead:
        """Add `module` at the end of the stack.

        Args:
            module: the layer to add.

        Returns:
            this head, for chaining.
        """
        self._sequential.append(module)
        return self

    def __getitem__(self, index: int | slice) -> nn.Module:
        return self._sequential[index]

    def __setitem__(self, index: int, module: nn.Module) -> None:
        self._sequential[index] = module

    def __delitem__(self, index: int | slice) -> None:
        del self._sequential[index]

    def __len__(self) -> int:
        return len(self._sequential)

    def __iter__(self) -> Iterator[nn.Module]:
        return iter(self._sequential)

    def get_config_dict(self) -> dict[str, Any]:
        """`{"output_size", "dropout", "layers"}`; raises for layers it cannot describe."""
        return {
            "output_size": self._output_size,
            "dropout": self._dropout_prob,
            "layers": [
                layer_to_spec(layer, f"_sequential.{name}")
                for name, layer in self._sequential.named_children()
            ],
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> SequentialHead:
        config = dict(config)
        if "layers" not in config:
            raise ValueError(
                "SequentialHead config has no 'layers' entry: it was written by a version that "
                "pickled the layers, which cannot be loaded safely; re-create and re-save the head"
            )
        layers = [layer_from_spec(spec) for spec in config.pop("layers")]
        return cls(*layers, **config)
