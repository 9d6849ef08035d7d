"""Hugging Face transformers model + mean pooling as an encoder (extra: quaterion[text])."""

from __future__ import annotations

import os
from pathlib import Path

import torch.nn.functional as F
from torch import Tensor

from quaterion_models.encoders.encoder import Encoder
from quaterion_models.encoders.extras.layer_split import (
    LowerLayers,
    freeze_lower,
    rebuild_frozen_original,
    run_upper,
)
from quaterion_models.encoders.extras.pretrained import PretrainedEncoder
from quaterion_models.encoders.extras.text_inputs import (
    TokenizerCollate,
    check_text_batch,
    clear_call_state,
    import_transformers,
    local_model_dir,
    mean_pool,
)
from quaterion_models.types import CollateFnType
from quaterion_models.utils.files import read_json, write_json_atomic

CONFIG_FILE = "quaterion_encoder.json"


class HuggingFaceEncoder(PretrainedEncoder):
    """Strings -> transformer token embeddings -> attention-masked mean -> `[B, hidden_size]`.

    Args:
        model_path: local directory with a transformers model and its tokenizer
            (e.g. `minilm_path()`); the hub is never contacted.
        trainable: fine-tune the transformer (False: frozen, cacheable, always in eval mode).
        max_length: longest token sequence kept per text (at most the model's positions).
        normalize: L2-normalise the pooled embeddings.
        trainable_layers: train only the top N transformer layers (and what follows them);
            the embeddings and lower layers stay frozen and their output is cached per object.

    `source` is the directory the weights were first loaded from; an encoder with trained top
    layers saves it, so that `frozen_original` can rebuild the untrained encoder (the baseline).

    `save` writes the weights (safetensors), the model config and the tokenizer files next to
    a small JSON config, so a servable directory is self-contained.
    """

    def __init__(
        self,
        model_path: str | os.PathLike,
        trainable: bool = False,
        max_length: int = 256,
        normalize: bool = False,
        trainable_layers: int = 0,
    ):
        if trainable and trainable_layers:
            raise ValueError(
                "Pass trainable=True (fine-tune every layer) or trainable_layers=N (the top N), "
                "not both"
            )
        super().__init__(trainable=trainable or trainable_layers > 0)
        if max_length < 1:
            raise ValueError(f"max_length must be a positive number of tokens, got {max_length}")
        transformers = import_transformers("HuggingFaceEncoder")
        path = local_model_dir(model_path)
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = transformers.AutoModel.from_pretrained(
            path, local_files_only=True, use_safetensors=True
        )
        self.model.eval()
        self.max_length = max_length
        self.normalize = normalize
        self.trainable_layers = trainable_layers
        # where the untrained weights came from: the frozen baseline is rebuilt from there
        self.source: str | None = str(Path(model_path).resolve())
        if trainable_layers:
            freeze_lower(self.model, trainable_layers)

    def train(self, mode: bool = True) -> HuggingFaceEncoder:
        """Switch train/eval mode; frozen lower layers always stay in eval mode."""
        super().train(mode)
        if self.trainable_layers:
            freeze_lower(self.model, self.trainable_layers)
        return self

    @property
    def frozen_lower(self) -> Encoder | None:
        if not self.trainable_layers:
            return None
        return LowerLayers(self.model, self.trainable_layers, self.get_collate_fn())

    def forward_upper(self, values: Tensor, mask: Tensor) -> Tensor:
        hidden = run_upper(self.model, self.trainable_layers, values, mask)
        return self._pool(hidden, mask)

    def _pool(self, hidden: Tensor, mask: Tensor) -> Tensor:
        pooled = mean_pool(hidden, mask)  # [B, D]
        return F.normalize(pooled, p=2, dim=1) if self.normalize else pooled

    @property
    def embedding_size(self) -> int:
        return int(self.model.config.hidden_size)

    def get_collate_fn(self) -> CollateFnType:
        # a model with fewer positions than max_length would fail on long texts: cut there
        positions = getattr(self.model.config, "max_position_embeddings", None) or self.max_length
        return TokenizerCollate(self.tokenizer, min(self.max_length, positions))

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        inputs = check_text_batch(batch)
        if self.trainable_layers:  # the same two steps as training on cached lower layers
            return self.forward_upper(*self.frozen_lower(inputs))
        hidden = self.model(
            input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]
        ).last_hidden_state  # [B, T, D]
        return self._pool(hidden, inputs["attention_mask"])

    def frozen_original(self) -> HuggingFaceEncoder:
        """This encoder before training: itself when no layer of it trains
        (`trainable_layers=0`), otherwise a frozen copy with the same pre-processing, loaded
        again from `source` (the original model's directory); an error when that directory
        is not recorded or not available."""
        return rebuild_frozen_original(self)

    def get_config_dict(self) -> dict:
        """Constructor arguments other than the model path, as stored by `save`."""
        return {
            "trainable": self.trainable and not self.trainable_layers,
            "trainable_layers": self.trainable_layers,
            "max_length": self.max_length,
            "normalize": self.normalize,
        }

    def save(self, output_path: str) -> None:
        self.model.save_pretrained(output_path)
        clear_call_state(self.tokenizer)
        self.tokenizer.save_pretrained(output_path)
        config = self.get_config_dict()
        if self.trainable_layers and self.source is not None:  # for the frozen baseline
            config["source"] = self.source
        write_json_atomic(Path(output_path) / CONFIG_FILE, config)

    @classmethod
    def load(cls, input_path: str) -> HuggingFaceEncoder:
        config = read_json(Path(input_path) / CONFIG_FILE, f"{cls.__name__} config")
        source = config.pop("source", None)
        encoder = cls(model_path=input_path, **config)
        encoder.source = source  # input_path holds the trained weights, not the original
        return encoder
