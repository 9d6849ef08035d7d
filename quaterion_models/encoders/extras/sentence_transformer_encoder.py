"""A sentence-transformers pipeline as a Quaterion encoder (extra: quaterion[text])."""

from __future__ import annotations

import os
from pathlib import Path

from torch import Tensor

from quaterion_models.encoders.encoder import Encoder
from quaterion_models.encoders.extras.layer_split import (
    LowerLayers,
    freeze_lower,
    rebuild_frozen_original,
    run_upper,
)
from quaterion_models.encoders.extras.optional_import import import_optional
from quaterion_models.encoders.extras.pretrained import PretrainedEncoder
from quaterion_models.encoders.extras.text_inputs import (
    TEXT_INPUTS,
    TokenizerCollate,
    check_text_batch,
    clear_call_state,
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
        max_seq_length: longest token sequence kept per text (None: the model's setting).
        do_lower_case: lower-case texts before tokenising (None: the model's setting).
        trainable_layers: train only the top N transformer layers and the modules after them;
            the embeddings and lower layers stay frozen and their output is cached per object.

    `source` is the directory the weights were first loaded from; an encoder with trained top
    layers saves it, so that `frozen_original` can rebuild the untrained encoder (the baseline).

    `save` writes the full sentence-transformers directory (safetensors weights, configs,
    tokenizer) and the pre-processing settings above as they are at save time (changed in
    place or not), so a loaded servable tokenises exactly as the saved model did.
    """

    def __init__(
        self,
        model_path: str | os.PathLike,
        trainable: bool = False,
        max_seq_length: int | None = None,
        do_lower_case: bool | None = None,
        trainable_layers: int = 0,
    ):
        if trainable and trainable_layers:
            raise ValueError(
                "Pass trainable=True (fine-tune every layer) or trainable_layers=N (the top N), "
                "not both"
            )
        super().__init__(trainable=trainable or trainable_layers > 0)
        if max_seq_length is not None and max_seq_length < 1:
            raise ValueError(
                f"max_seq_length must be a positive number of tokens, got {max_seq_length}"
            )
        import_transformers("SentenceTransformerEncoder")
        sentence_transformers = import_optional(
            "sentence_transformers", "text", "SentenceTransformerEncoder"
        )
        self.model = sentence_transformers.SentenceTransformer(
            local_model_dir(model_path), device="cpu", local_files_only=True
        )
        self.model.eval()
        if max_seq_length is not None:
            self.model.max_seq_length = max_seq_length
        if do_lower_case is not None:
            self.model[0].do_lower_case = do_lower_case
        self.trainable_layers = trainable_layers
        # where the untrained weights came from: the frozen baseline is rebuilt from there
        self.source: str | None = str(Path(model_path).resolve())
        if trainable_layers:
            freeze_lower(self.model[0].auto_model, trainable_layers)

    def train(self, mode: bool = True) -> SentenceTransformerEncoder:
        """Switch train/eval mode; frozen lower layers always stay in eval mode."""
        super().train(mode)
        if self.trainable_layers:
            freeze_lower(self.model[0].auto_model, self.trainable_layers)
        return self

    @property
    def frozen_lower(self) -> Encoder | None:
        if not self.trainable_layers:
            return None
        return LowerLayers(self.model[0].auto_model, self.trainable_layers, self.get_collate_fn())

    def forward_upper(self, values: Tensor, mask: Tensor) -> Tensor:
        hidden = run_upper(self.model[0].auto_model, self.trainable_layers, values, mask)
        features = {"token_embeddings": hidden, "attention_mask": mask}
        for module in list(self.model)[1:]:  # pooling, normalisation, ...
            features = module(features)
        return features["sentence_embedding"]

    @property
    def embedding_size(self) -> int:
        return int(self.model.get_embedding_dimension())

    def get_collate_fn(self) -> CollateFnType:
        config = self.get_config_dict()
        return TokenizerCollate(
            self.model.tokenizer, config["max_seq_length"], config["do_lower_case"]
        )

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        inputs = check_text_batch(batch)
        if self.trainable_layers:  # the same two steps as training on cached lower layers
            return self.forward_upper(*self.frozen_lower(inputs))
        features = self.model({name: inputs[name] for name in TEXT_INPUTS})
        return features["sentence_embedding"]

    def frozen_original(self) -> SentenceTransformerEncoder:
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
            "max_seq_length": int(self.model.max_seq_length),
            "do_lower_case": bool(getattr(self.model[0], "do_lower_case", False)),
        }

    def save(self, output_path: str) -> None:
        clear_call_state(self.model.tokenizer)
        self.model.save(output_path, create_model_card=False, safe_serialization=True)
        config = self.get_config_dict()
        if self.trainable_layers and self.source is not None:  # for the frozen baseline
            config["source"] = self.source
        write_json_atomic(Path(output_path) / CONFIG_FILE, config)

    @classmethod
    def load(cls, input_path: str) -> SentenceTransformerEncoder:
        config = read_json(Path(input_path) / CONFIG_FILE, f"{cls.__name__} config")
        source = config.pop("source", None)
        encoder = cls(model_path=input_path, **config)
        encoder.source = source  # input_path holds the trained weights, not the original
        return encoder
