"""A sentence-transformers pipeline as a Quaterion encoder (extra: quaterion[text])."""

from __future__ import annotations

import os
from pathlib import Path

from torch import Tensor

from quaterion_models.encoders.extras.optional_import import import_optional
from quaterion_models.encoders.extras.pretrained import PretrainedEncoder
from quaterion_models.encoders.extras.text_inputs import (
    TEXT_INPUTS,
    TokenizerCollate,
    check_text_batch,
    import_transformers,
    local_model_dir,
)
from quaterion_models.types import CollateFnType
from quaterion_models.utils.files import read_json, write_json_atomic

CONFIG_FILE = "quaterion_encoder.json"


class SentenceTransformerEncoder(PretrainedEncoder):
    """Strings -> the model's own sentence-transformers modules (pooling, normalisation, ...).

    Args:
        model_path: local sentence-transformers directory (e.g. `minilm_path()`).
        trainable: fine-tune the network (False: frozen, cacheable, always in eval mode).

    Tokenisation follows the model's settings (`max_seq_length`, lower-casing); `save` writes
    the full sentence-transformers directory (safetensors weights, configs, tokenizer).
    """

    def __init__(self, model_path: str | os.PathLike, trainable: bool = False):
        super().__init__(trainable=trainable)
        import_transformers("SentenceTransformerEncoder")
        sentence_transformers = import_optional(
            "sentence_transformers", "text", "SentenceTransformerEncoder"
        )
        self.model = sentence_transformers.SentenceTransformer(
            local_model_dir(model_path), device="cpu", local_files_only=True
        )
        self.model.eval()

    @property
    def embedding_size(self) -> int:
        return int(self.model.get_embedding_dimension())

    def get_collate_fn(self) -> CollateFnType:
        lowercase = bool(getattr(self.model[0], "do_lower_case", False))
        return TokenizerCollate(self.model.tokenizer, self.model.max_seq_length, lowercase)

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        inputs = check_text_batch(batch)
        features = self.model({name: inputs[name] for name in TEXT_INPUTS})
        return features["sentence_embedding"]

    def save(self, output_path: str) -> None:
        self.model.save(output_path, create_model_card=False, safe_serialization=True)
        write_json_atomic(Path(output_path) / CONFIG_FILE, {"trainable": self.trainable})

    @classmethod
    def load(cls, input_path: str) -> SentenceTransformerEncoder:
        config = read_json(Path(input_path) / CONFIG_FILE, f"{cls.__name__} config")
        return cls(model_path=input_path, **config)
