"""Content digests of arbitrary Python values (samples, objects): equal values give equal
digests in any process, and any change of content, type or structure changes them.

The cache fingerprints its data with them and the vector stores derive stable point ids from
them; both need the same unambiguous encoding, so it lives here, below both.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import pickle
from typing import Any

import numpy as np
import torch

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
