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

import dataclasses
import functools
import hashlib
import json
import pickle
import tempfile
from typing import Any

import numpy as np
import torch
from torch import nn

from quaterion_models.utils.files import directory_manifest

DIGEST_SIZE = 16  # bytes per sample digest


def tensor_bytes(tensor: torch.Tensor) -> memoryview:
    """The raw bytes of `tensor` (any dtype, any device) without an extra copy on the CPU.

    Args:
        tensor: any tensor.
    """
    flat = tensor.detach().reshape(-1)
    if flat.device.type != "cpu" or not flat.is_contiguous():
        flat = flat.contiguous().cpu()
    return memoryview(flat.view(torch.uint8).numpy())


@functools.cache
def dataclass_field_names(kind: type) -> tuple[str, ...] | None:
    """Field names of a dataclass type (cached per type); None for other types."""
    if not dataclasses.is_dataclass(kind):
        return None
    return tuple(field.name for field in dataclasses.fields(kind))


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


def sample_digest(sample: Any) -> bytes:
    """`DIGEST_SIZE` bytes that change whenever the sample (objects or labels) changes.

    Args:
        sample: one sample.
    """
    digest = hashlib.blake2b(digest_size=DIGEST_SIZE)
    _feed(digest, sample)
    return digest.digest()


def _feed(digest: Any, value: Any) -> None:
    """Add an unambiguous encoding of `value` (type tags and lengths included) to `digest`."""
    if isinstance(value, torch.Tensor):
        digest.update(f"T{value.dtype}{tuple(value.shape)}".encode())
        digest.update(tensor_bytes(value))
        return
    names = dataclass_field_names(type(value))
    if names is not None:
        digest.update(type(value).__qualname__.encode())
        for name in names:
            _feed(digest, getattr(value, name))
    elif isinstance(value, str):
        digest.update(f"S{len(value)}:".encode())
        digest.update(value.encode("utf-8", "surrogatepass"))
    elif isinstance(value, bytes):
        digest.update(f"B{len(value)}:".encode())
        digest.update(value)
    elif value is None or isinstance(value, (bool, int, float, complex)):
        digest.update(f"V{type(value).__name__}{value!r};".encode())
    elif isinstance(value, np.ndarray) and value.dtype != object:
        digest.update(f"A{value.dtype}{value.shape}".encode())
        digest.update(np.ascontiguousarray(value).tobytes())
    elif isinstance(value, (list, tuple)):
        digest.update(f"L{type(value).__qualname__}{len(value)}[".encode())
        for item in value:
            _feed(digest, item)
        digest.update(b"]")
    elif isinstance(value, dict):
        digest.update(f"M{len(value)}{{".encode())
        for key, item in value.items():
            _feed(digest, key)
            _feed(digest, item)
        digest.update(b"}")
    else:  # anything else (images, custom records): its pickled form (only ever written)
        digest.update(f"P{type(value).__qualname__}".encode())
        try:
            digest.update(pickle.dumps(value, protocol=4))
        except (pickle.PicklingError, TypeError, AttributeError):
            # no stable encoding: the repr may hold an address, which only ever forces a rebuild
            digest.update(repr(value).encode())
