"""Word vectors (gensim FastText / KeyedVectors) aggregated per record (extra: quaterion[fasttext]).

A servable stores the vectors as safetensors plus JSON (vocabulary and sub-word settings), so
loading it never unpickles; gensim is still needed to look words up (sub-word hashing).
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from safetensors.numpy import load_file as load_numpy_file
from torch import Tensor

from quaterion_models.encoders.encoder import Encoder
from quaterion_models.encoders.extras.optional_import import import_optional
from quaterion_models.types import CollateFnType
from quaterion_models.utils.files import read_json, save_tensors_atomic, write_json_atomic

if TYPE_CHECKING:
    from gensim.models import KeyedVectors

CONFIG_FILE = "config.json"
VECTORS_FILE = "vectors.safetensors"
VOCAB_FILE = "vocab.json"
_SAFETENSORS_DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16}


def _gensim(purpose: str) -> Any:
    return import_optional("gensim.models", "fasttext", purpose)


def load_fasttext_model(path: str | os.PathLike, mmap: str | None = None) -> KeyedVectors:
    """Word vectors from a gensim FastText model, a Facebook `.bin` model or gensim KeyedVectors.

    The formats are tried in that order. gensim's native formats are pickles: only load files
    you created or trust. Raises ValueError naming the file when no format fits.

    Args:
        path: the model file.
        mmap: `"r"` to memory-map the vectors (gensim formats), None to read them into memory.

    Returns:
        gensim `KeyedVectors`.
    """
    models = _gensim("load_fasttext_model")
    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(f"No word-vector model at {source}")
    fasttext = import_optional("gensim.models.fasttext", "fasttext", "load_fasttext_model")
    attempts = (
        ("gensim FastText model", lambda: models.FastText.load(str(source), mmap=mmap).wv),
        ("Facebook FastText binary", lambda: fasttext.load_facebook_vectors(str(source))),
        ("gensim KeyedVectors", lambda: models.KeyedVectors.load(str(source), mmap=mmap)),
    )
    errors = []
    for name, attempt in attempts:
        try:
            return attempt()
        except Exception as exc:  # each format fails in its own way; report them all
            errors.append(f"{name}: {type(exc).__name__}: {exc}")
    raise ValueError(f"Cannot read word vectors from {source}; tried " + "; ".join(errors))


def _memory_mapped_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Read-only memory maps of the arrays of a safetensors file (header format of the spec)."""
    with open(path, "rb") as handle:
        (header_size,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(header_size))
    arrays = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, _ = info["data_offsets"]
        arrays[name] = np.memmap(
            path,
            dtype=_SAFETENSORS_DTYPES[info["dtype"]],
            mode="r",
            offset=8 + header_size + start,
            shape=tuple(info["shape"]),
        )
    return arrays


def _read_vectors(path: Path, on_disk: bool) -> KeyedVectors:
    """Rebuild gensim KeyedVectors from the files `FasttextEncoder.save` wrote."""
    models = _gensim("FasttextEncoder.load")
    vocab = read_json(path / VOCAB_FILE, "FasttextEncoder vocabulary")
    tensors_path = path / VECTORS_FILE
    if not tensors_path.is_file():
        raise FileNotFoundError(f"Missing word vectors: {tensors_path} does not exist")
    if on_disk:
        arrays = _memory_mapped_safetensors(tensors_path)
    else:
        arrays = load_numpy_file(str(tensors_path))
    vectors = arrays["vectors"]
    subwords = vocab["subwords"]
    if subwords is None:
        keyed = models.KeyedVectors(vector_size=vectors.shape[1])
    else:
        keyed = models.fasttext.FastTextKeyedVectors(vector_size=vectors.shape[1], **subwords)
        keyed.vectors_ngrams = arrays["vectors_ngrams"]
    keyed.index_to_key = list(vocab["index_to_key"])
    keyed.key_to_index = {key: index for index, key in enumerate(keyed.index_to_key)}
    keyed.vectors = vectors
    return keyed


class FasttextEncoder(Encoder):
    """Tokens -> word vectors -> concatenation of `aggregations` (`"avg"`, `"max"`, `"min"`).

    Args:
        model_path: gensim FastText / KeyedVectors file (see `load_fasttext_model`), or an
            already loaded gensim KeyedVectors object.
        on_disk: memory-map the vectors instead of reading them into RAM.
        aggregations: how token vectors of one record are pooled, default `["avg"]`.

    Subclasses implement `get_tokens` (the collate function: records -> token lists). A record
    without tokens, or whose words are all unknown to plain (non-FastText) vectors, maps to
    zeros. The encoder is never trainable.
    """

    aggregation_options = ["min", "max", "avg"]

    def __init__(
        self,
        model_path: str | os.PathLike | KeyedVectors,
        on_disk: bool,
        aggregations: list[str] | None = None,
    ):
        super().__init__()
        aggregations = list(aggregations) if aggregations is not None else ["avg"]
        unknown = [name for name in aggregations if name not in self.aggregation_options]
        if unknown or not aggregations:
            raise ValueError(
                f"Unknown aggregations {unknown or aggregations}; "
                f"choose one or more of {self.aggregation_options}"
            )
        self.on_disk = on_disk
        self.aggregations = aggregations
        if isinstance(model_path, (str, os.PathLike)):
            model_path = load_fasttext_model(model_path, mmap="r" if on_disk else None)
        self.model = model_path
        self._has_subwords = hasattr(self.model, "vectors_ngrams") and self.model.bucket > 0
        self.register_buffer("_device_tensor", torch.zeros(1), persistent=False)

    @property
    def trainable(self) -> bool:
        return False

    @property
    def embedding_size(self) -> int:
        return int(self.model.vector_size) * len(self.aggregations)

    @classmethod
    def get_tokens(cls, batch: list[Any]) -> list[list[str]]:
        """Raw records -> one list of tokens per record (the collate function).

        Args:
            batch: raw records.

        Returns:
            one list of tokens per record.
        """
        raise NotImplementedError(f"{cls.__name__} must implement the `get_tokens` classmethod")

    def get_collate_fn(self) -> CollateFnType:
        return self.get_tokens

    @classmethod
    def aggregate(cls, embeddings: Tensor, operation: str) -> Tensor:
        """Pool token vectors `[n, V]` -> `[V]` with "avg", "max" or "min".

        Args:
            embeddings: token vectors `[n, V]`.
            operation: `"avg"`, `"max"` or `"min"`.

        Returns:
            the pooled vector `[V]`.
        """
        if operation == "avg":
            return embeddings.mean(dim=0)
        if operation == "max":
            return embeddings.max(dim=0).values
        if operation == "min":
            return embeddings.min(dim=0).values
        raise RuntimeError(f"Unknown operation: {operation}")

    def _token_vectors(self, tokens: list[str]) -> Tensor:
        """`[n, V]` float32 vectors of the known tokens; one zero row when there are none."""
        if not self._has_subwords:
            tokens = [token for token in tokens if token in self.model.key_to_index]
        if not tokens:
            return torch.zeros(1, self.model.vector_size, dtype=torch.float32)
        rows = [np.asarray(self.model.get_vector(token), dtype=np.float32) for token in tokens]
        return torch.from_numpy(np.stack(rows))

    def forward(self, batch: list[list[str]]) -> Tensor:
        records = []
        for tokens in batch:
            vectors = self._token_vectors(tokens)  # [n, V]
            records.append(torch.cat([self.aggregate(vectors, op) for op in self.aggregations]))
        return torch.stack(records).to(self._device_tensor.device)  # [B, V * len(aggregations)]

    def save(self, output_path: str) -> None:
        path = Path(output_path)
        tensors = {"vectors": torch.from_numpy(np.array(self.model.vectors, dtype=np.float32))}
        subwords = None
        if self._has_subwords:
            tensors["vectors_ngrams"] = torch.from_numpy(
                np.array(self.model.vectors_ngrams, dtype=np.float32)
            )
            subwords = {
                "min_n": self.model.min_n,
                "max_n": self.model.max_n,
                "bucket": self.model.bucket,
            }
        save_tensors_atomic(tensors, path / VECTORS_FILE)
        write_json_atomic(
            path / VOCAB_FILE,
            {"index_to_key": list(self.model.index_to_key), "subwords": subwords},
        )
        write_json_atomic(
            path / CONFIG_FILE, {"on_disk": self.on_disk, "aggregations": self.aggregations}
        )

    @classmethod
    def load(cls, input_path: str) -> FasttextEncoder:
        path = Path(input_path)
        config = read_json(path / CONFIG_FILE, f"{cls.__name__} config")
        vectors = _read_vectors(path, on_disk=bool(config.get("on_disk", False)))
        return cls(model_path=vectors, **config)
