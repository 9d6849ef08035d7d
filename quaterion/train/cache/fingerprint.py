"""Fingerprints that decide whether a stored cache still matches its encoder and data.

An encoder's fingerprint covers everything that changes its outputs: its class, its
configuration (module structure and `get_config_dict()` when it has one), every tensor it
holds (parameters and buffers, non-persistent ones such as normalisation constants included)
and every file its `save` writes (tokenizer files and settings, pre-processing settings, model
configs, weights). The saved files are the one general mechanism: whatever an encoder needs
to reproduce its outputs in a servable is, by the servable contract, what `save` writes, so a
tokenizer changed in place changes the fingerprint without any per-encoder code. A data set's
fingerprint covers its length and a digest of every sample, objects and labels included,
taken in loader order by the fill pass (`sample_digest` runs in the loader workers).
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


def encoder_fingerprint(encoder: nn.Module) -> str:
    """Hex digest of the encoder's class, configuration, tensors and saved files.

    Args:
        encoder: the encoder (the wrapped one, not its cache).
    """
    digest = hashlib.blake2b(digest_size=DIGEST_SIZE)
    kind = type(encoder)
    digest.update(f"{kind.__module__}.{kind.__qualname__}\n{encoder!r}".encode())
    get_config = getattr(encoder, "get_config_dict", None)
    if callable(get_config):
        digest.update(json.dumps(get_config(), sort_keys=True, default=repr).encode())
    tensors = dict(encoder.state_dict())
    for name, buffer in encoder.named_buffers():  # non-persistent buffers change outputs too
        tensors.setdefault(name, buffer)
    for name, tensor in tensors.items():
        digest.update(f"\n{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor_bytes(tensor))
    digest.update(saved_files_manifest(encoder).encode())
    return digest.hexdigest()


def saved_files_manifest(encoder: nn.Module) -> str:
    """JSON of `{relative path: size and sha256}` of every file `encoder.save` writes, taken in
    a temporary directory; empty for a module without `save` or whose `save` is not
    implemented (its tensors and config are then all the fingerprint sees).

    Args:
        encoder: the encoder.
    """
    save = getattr(encoder, "save", None)
    if not callable(save):
        return ""
    with tempfile.TemporaryDirectory(prefix="quaterion-fingerprint-") as directory:
        try:
            save(directory)
        except NotImplementedError:
            return ""
        return json.dumps(directory_manifest(directory), sort_keys=True)


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
