"""Turning raw strings into transformer inputs, and loading tokenizers from local paths only."""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import Tensor

from quaterion_models.encoders.extras.optional_import import import_optional

TEXT_INPUTS = ("input_ids", "attention_mask")


def import_transformers(purpose: str) -> ModuleType:
    """Import transformers in offline mode (these encoders only ever read local directories).

    Args:
        purpose: what needs transformers, named in the error.

    Returns:
        the `transformers` module.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return import_optional("transformers", "text", purpose)


def local_model_dir(model_path: str | os.PathLike) -> str:
    """`model_path` as a string, after checking that it is an existing local directory.

    Args:
        model_path: a local directory holding a transformers model.

    Returns:
        the path, as a string, once checked to exist.
    """
    path = Path(model_path)
    if not path.is_dir():
        raise FileNotFoundError(
            f"Model directory {path} does not exist; text encoders load local directories only "
            "(never the Hugging Face hub), e.g. quaterion_models.encoders.extras.minilm_path()"
        )
    return str(path)


class TokenizerCollate:
    """Picklable collate function: list of strings -> `{"input_ids", "attention_mask"}` [B, T].

    Strings are stripped (and lower-cased when the model expects it), padded to the longest in
    the batch and truncated to `max_length` tokens.

    Args:
        tokenizer: a transformers tokenizer.
        max_length: longest token sequence kept.
        lowercase: lower-case the strings first.
    """

    def __init__(self, tokenizer: Any, max_length: int, lowercase: bool = False):
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.lowercase = lowercase

    def __call__(self, batch: list[str]) -> dict[str, Tensor]:
        for position, text in enumerate(batch):
            if not isinstance(text, str):
                raise TypeError(
                    f"Text encoders take a list of strings; item {position} is "
                    f"{type(text).__name__}: {text!r}"
                )
        texts = [text.strip() for text in batch]
        if self.lowercase:
            texts = [text.lower() for text in texts]
        tokens = self.tokenizer(
            texts,
            padding=True,
            truncation="longest_first",
            max_length=self.max_length,
            return_tensors="pt",
        )
        return {name: tokens[name] for name in TEXT_INPUTS}


def clear_call_state(tokenizer: Any) -> None:
    """Turn off the truncation and padding that a call leaves set on a fast tokenizer's
    backend (they are saved in tokenizer.json).

    `TokenizerCollate` sets both on every call, so they never change what it returns; cleared
    before a save, they keep the saved files (and the cache fingerprints taken from them) the
    same whether or not the encoder has been used.

    Args:
        tokenizer: a Hugging Face tokenizer (slow tokenizers have no such state: untouched).
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        backend.no_truncation()
        backend.no_padding()


def mean_pool(token_embeddings: Tensor, attention_mask: Tensor) -> Tensor:
    """Average of the token embeddings [B, T, D] over real (mask 1) tokens -> [B, D].

    Args:
        token_embeddings: `[B, T, D]` token embeddings.
        attention_mask: `[B, T]`, 1 for real tokens and 0 for padding.

    Returns:
        `[B, D]` sentence embeddings.
    """
    mask = attention_mask.unsqueeze(-1).to(token_embeddings.dtype)  # [B, T, 1]
    summed = (token_embeddings * mask).sum(dim=1)  # [B, D]
    counts = mask.sum(dim=1).clamp(min=1e-9)  # [B, 1]
    return summed / counts


def check_text_batch(batch: Any) -> dict[str, Tensor]:
    """The collated dict, after checking it holds the tensors `TokenizerCollate` produces.

    Args:
        batch: what a text encoder's `forward` received.
    """
    if not isinstance(batch, dict) or any(
        not isinstance(batch.get(name), torch.Tensor) for name in TEXT_INPUTS
    ):
        raise TypeError(
            "Text encoders take the output of their collate function: a dict with tensors "
            f"{list(TEXT_INPUTS)}; got {type(batch).__name__}"
        )
    return batch
