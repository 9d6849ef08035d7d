"""Splitting a BERT-like transformer into a frozen, cacheable bottom and a trainable top.

The bottom (embeddings and the first L-N layers) runs once per object when its output is
cached; the top N layers run on that output every step. Both run the model's own modules, so
the composition equals the model's forward.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from quaterion_models.encoders.encoder import Encoder
from quaterion_models.encoders.extras.text_inputs import check_text_batch, import_transformers
from quaterion_models.types import CollateFnType


def layer_stack(model: Any, trainable_layers: int) -> nn.ModuleList:
    """The transformer layers of `model` (`model.encoder.layer`), after checking that the top
    `trainable_layers` of them can train while the others stay frozen.

    Args:
        model: a transformers encoder model with `embeddings` and `encoder.layer` (BERT-like).
        trainable_layers: how many top layers train.
    """
    layers = getattr(getattr(model, "encoder", None), "layer", None)
    if not isinstance(layers, nn.ModuleList) or not hasattr(model, "embeddings"):
        raise ValueError(
            f"trainable_layers needs a BERT-like model (embeddings + encoder.layer); "
            f"{type(model).__name__} is not one: use trainable=True to fine-tune all of it"
        )
    if not 1 <= trainable_layers <= len(layers):
        raise ValueError(
            f"trainable_layers must be between 1 and the model's {len(layers)} layers, "
            f"got {trainable_layers}"
        )
    return layers


def freeze_lower(model: Any, trainable_layers: int) -> None:
    """Turn off gradients of the embeddings and of all but the top `trainable_layers` layers.

    Args:
        model: a BERT-like transformers model.
        trainable_layers: how many top layers train.
    """
    layers = layer_stack(model, trainable_layers)
    for module in [model.embeddings, *layers[: len(layers) - trainable_layers]]:
        module.eval()
        for parameter in module.parameters():
            parameter.requires_grad = False


def original_source(source: str | None, trainable_layers: int) -> str:
    """The directory of the pre-trained model that a partly trained encoder was built from,
    after checking that it is still there (its frozen original is rebuilt from it).

    Args:
        source: the recorded directory, or None when none was recorded (a servable saved
            before sources were recorded).
        trainable_layers: how many top layers of the encoder trained.

    Returns:
        the directory, once checked to exist and be readable.
    """
    trained = f"this encoder was partly trained (its top {trainable_layers} layers)"
    if source is None:
        raise FileNotFoundError(
            f"{trained} and its servable does not record the model it was built from (saved "
            "by an older version), so the frozen original cannot be rebuilt; add the original "
            "model's directory as \"source\" to the encoder's quaterion_encoder.json in the "
            "servable, or train it again with this version"
        )
    if not Path(source).is_dir() or not os.access(source, os.R_OK | os.X_OK):
        raise FileNotFoundError(
            f"{trained}; its original model at {source} is not available (missing or "
            "unreadable), so the frozen original cannot be rebuilt; put the original model "
            "back at that path"
        )
    return source


def rebuild_frozen_original(encoder: Any) -> Any:
    """`encoder` before training: itself when no layer of it trains (`trainable_layers=0`),
    otherwise a frozen copy of its class with the same pre-processing, built again from its
    recorded `source` (checked by `original_source`).

    Args:
        encoder: a pre-trained text encoder with `trainable_layers`, `source` and
            `get_config_dict()` (HuggingFaceEncoder, SentenceTransformerEncoder).
    """
    if not encoder.trainable_layers:
        return encoder
    config = {**encoder.get_config_dict(), "trainable_layers": 0}
    return type(encoder)(original_source(encoder.source, encoder.trainable_layers), **config)


def _run_layers(model: Any, layers: Any, hidden: Tensor, attention_mask: Tensor) -> Tensor:
    masking = import_transformers("trainable_layers").masking_utils
    mask = masking.create_bidirectional_mask(
        config=model.config, inputs_embeds=hidden, attention_mask=attention_mask
    )
    for layer in layers:
        hidden = layer(hidden, mask)
    return hidden


def run_upper(model: Any, trainable_layers: int, hidden: Tensor, attention_mask: Tensor) -> Tensor:
    """The top `trainable_layers` layers of `model` on the bottom's output -> `[B, T, D]`.

    Args:
        model: a BERT-like transformers model.
        trainable_layers: how many top layers train.
        hidden: `[B, T, D]` output of the bottom layers.
        attention_mask: `[B, T]`, 1 for real tokens.
    """
    layers = layer_stack(model, trainable_layers)
    return _run_layers(model, layers[len(layers) - trainable_layers :], hidden, attention_mask)


class LowerLayers(Encoder):
    """The frozen bottom of a transformer as an encoder: tokens -> `(hidden [B, T, D], mask
    [B, T])`, the output that the cache stores per object without padding.

    Args:
        model: a BERT-like transformers model (its modules are shared, not copied).
        trainable_layers: how many top layers are left out (they train).
        collate_fn: the whole encoder's collate function (texts -> tokens).
    """

    def __init__(self, model: Any, trainable_layers: int, collate_fn: CollateFnType):
        super().__init__()
        self._collate_fn = collate_fn
        layers = layer_stack(model, trainable_layers)
        self.embeddings = model.embeddings
        self.layers = nn.ModuleList(list(layers[: len(layers) - trainable_layers]))
        self._config = model.config

    @property
    def trainable(self) -> bool:
        return False

    @property
    def embedding_size(self) -> int:
        return int(self._config.hidden_size)

    def get_collate_fn(self) -> CollateFnType:
        return self._collate_fn

    def forward(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        inputs = check_text_batch(batch)
        hidden = self.embeddings(input_ids=inputs["input_ids"])
        hidden = _run_layers(self, self.layers, hidden, inputs["attention_mask"])
        return hidden, inputs["attention_mask"]

    @property
    def config(self) -> Any:
        """The transformer's config (the attention masks are built from it)."""
        return self._config

    def save(self, output_path: str) -> None:
        raise ValueError("The bottom layers are saved with their encoder, never on their own")

    @classmethod
    def load(cls, input_path: str) -> Encoder:
        raise ValueError("The bottom layers are loaded with their encoder, never on their own")
