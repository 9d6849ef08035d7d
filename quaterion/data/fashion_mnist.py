"""Fashion-MNIST from the Debian package `dataset-fashion-mnist` (IDX files, parsed here).

IDX layout: 2 zero bytes, a type code, the number of dimensions, then one big-endian uint32
per dimension and the values in row-major, big-endian order.
"""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from torch import Tensor

from quaterion.dataset.similarity_samples import SimilarityGroupSample

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
_IDX_TYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _open(path: Path) -> BinaryIO:
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def read_idx(path: str | os.PathLike, limit: int | None = None) -> np.ndarray:
    """Array stored in an IDX file (optionally gzip-compressed); `limit` reads the first rows.

    Args:
        path: an IDX file, optionally gzip-compressed.
        limit: read only the first `limit` rows (None: all).

    Returns:
        the array, in native byte order.
    """
    source = Path(path)
    with _open(source) as handle:
        magic = handle.read(4)
        if len(magic) != 4 or magic[:2] != b"\x00\x00" or magic[2] not in _IDX_TYPES:
            raise ValueError(f"{source} is not an IDX file (magic bytes {magic!r})")
        dtype, ndim = _IDX_TYPES[magic[2]], magic[3]
        shape = list(struct.unpack(f">{ndim}I", handle.read(4 * ndim)))
        if limit is not None:
            shape[0] = min(shape[0], limit)
        count = int(np.prod(shape))
        data = handle.read(count * dtype.itemsize)
    if len(data) != count * dtype.itemsize:
        raise ValueError(f"{source} is truncated: expected {count} values of shape {shape}")
    return np.frombuffer(data, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def load_fashion_mnist(
    split: str = "train",
    limit: int | None = None,
    directory: str | os.PathLike = FASHION_MNIST_DIR,
) -> tuple[Tensor, Tensor]:
    """(images uint8 `[N, 28, 28]`, labels int64 `[N]`) of the "train" (60k) or "test" (10k) split.

    `limit` keeps the first `limit` examples (read without decompressing the rest).

    Args:
        split: `"train"` or `"test"`.
        limit: keep the first `limit` examples (None: all).
        directory: the folder holding the IDX files (default: where `dataset-fashion-mnist` installs
            them).
    """
    if split not in SPLIT_FILES:
        raise ValueError(f"Unknown Fashion-MNIST split {split!r}; choose from {list(SPLIT_FILES)}")
    paths = [Path(directory) / name for name in SPLIT_FILES[split]]
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(
                f"Fashion-MNIST file {path} is missing; install the Debian package "
                "`dataset-fashion-mnist` (apt-get install dataset-fashion-mnist) "
                "or pass `directory=`"
            )
    images, labels = (read_idx(path, limit) for path in paths)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(
            f"Fashion-MNIST files disagree: images {images.shape} vs labels {labels.shape}"
        )
    return torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64))


def fashion_mnist_groups(
    split: str = "train",
    limit: int | None = None,
    directory: str | os.PathLike = FASHION_MNIST_DIR,
) -> list[SimilarityGroupSample]:
    """Images as float `[1, 28, 28]` tensors in [0, 1], grouped by class (see `CLASS_NAMES`).

    Args:
        split: `"train"` or `"test"`.
        limit: keep the first `limit` examples (None: all).
        directory: the folder holding the IDX files (default: where `dataset-fashion-mnist` installs
            them).

    Returns:
        one `SimilarityGroupSample` per image, `group` = class id.
    """
    images, labels = load_fashion_mnist(split, limit, directory)
    pixels = images.unsqueeze(1).float() / 255.0  # [N, 1, 28, 28]
    return [
        SimilarityGroupSample(obj=image, group=int(label))
        for image, label in zip(pixels, labels.tolist(), strict=True)
    ]
