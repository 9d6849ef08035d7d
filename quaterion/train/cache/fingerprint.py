"""Fingerprints that decide whether a stored cache still matches its encoder and data.

An encoder's fingerprint covers its class, configuration, every tensor it holds (non-persistent
buffers included) and every file its `save` writes: whatever a servable needs to reproduce its
outputs (tokenizer files and settings too) is what `save` writes, so no per-encoder code is
needed. A data set's fingerprint is a digest of every sample (`sample_digest`, in the fill).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from typing import Any

import torch
from torch import nn

from quaterion.utils.digest import (  # noqa: F401 - re-exported for the cache fill
    DIGEST_SIZE,
    dataclass_field_names,
    sample_digest,
    tensor_bytes,
)
from quaterion_models.utils.files import directory_manifest


def tensor_checksum(tensor: torch.Tensor) -> str:
    """Hex digest of the bytes of `tensor`: what a cache manifest records per file.

    Args:
        tensor: any tensor.
    """
    return hashlib.blake2b(tensor_bytes(tensor), digest_size=DIGEST_SIZE).hexdigest()


WEIGHT_FILES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack")


def encoder_fingerprint(encoder: nn.Module) -> str:
    """Hex digest of the encoder's class, configuration, tensors and saved files. Of a partly
    trainable encoder (`frozen_lower` is not None), only the tensors of its frozen bottom and
    its saved files other than weights count: training its top leaves the hidden states its
    bottom computed valid.

    Args:
        encoder: the encoder (the wrapped one, not its cache).
    """
    digest = hashlib.blake2b(digest_size=DIGEST_SIZE)
    digest.update(f"{type(encoder).__module__}.{type(encoder).__qualname__}\n{encoder!r}".encode())
    if callable(get_config := getattr(encoder, "get_config_dict", None)):
        digest.update(json.dumps(get_config(), sort_keys=True, default=repr).encode())
    lower = getattr(encoder, "frozen_lower", None)
    holder = encoder if lower is None else lower
    tensors = dict(holder.state_dict())
    for name, buffer in holder.named_buffers():  # non-persistent buffers change outputs too
        tensors.setdefault(name, buffer)
    for name, tensor in tensors.items():
        digest.update(f"\n{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor_bytes(tensor))
    if callable(save := getattr(encoder, "save", None)):
        with tempfile.TemporaryDirectory(prefix="quaterion-fingerprint-") as directory:
            try:
                save(directory)
                files = directory_manifest(directory)
                if lower is not None:  # the bottom's weights are hashed above, the top's never
                    files = {k: v for k, v in files.items() if not k.endswith(WEIGHT_FILES)}
                digest.update(json.dumps(files, sort_keys=True).encode())
            except NotImplementedError:  # its tensors and config are all the fingerprint sees
                pass
    return digest.hexdigest()


def callable_fingerprint(function: Any) -> str:
    """Identity of a function (name, and bytecode and constants when it has them): a changed
    key extractor must not reuse rows keyed by the old one.

    Args:
        function: a key extractor or other callable.
    """
    code = getattr(function, "__code__", None)
    name = getattr(function, "__qualname__", repr(function))
    if code is None:
        return f"{getattr(function, '__module__', '')}.{name}"
    digest = hashlib.blake2b(code.co_code, digest_size=DIGEST_SIZE)
    digest.update(repr(code.co_consts).encode())
    return f"{function.__module__}.{name}:{digest.hexdigest()}"
