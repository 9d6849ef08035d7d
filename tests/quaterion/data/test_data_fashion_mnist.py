"""Fashion-MNIST IDX reader and loaders (Debian package `dataset-fashion-mnist`)."""

import gzip
import struct

import numpy as np
import pytest
import torch

from quaterion.data import CLASS_NAMES, fashion_mnist_groups, load_fashion_mnist, read_idx
from quaterion.data.fashion_mnist import FASHION_MNIST_DIR

installed = pytest.mark.skipif(
    not FASHION_MNIST_DIR.is_dir(), reason="Debian package dataset-fashion-mnist missing"
)


def write_idx(path, type_code, values: np.ndarray, compress=False):
    header = bytes([0, 0, type_code, values.ndim]) + struct.pack(f">{values.ndim}I", *values.shape)
    opener = gzip.open if compress else open
    with opener(path, "wb") as handle:
        handle.write(header + values.tobytes())


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_big_endian_values(tmp_path, compress):
    values = np.array([[[1, -2], [300, -400]], [[5, 6], [7, 8]]], dtype=">i2")
    path = tmp_path / ("x.idx.gz" if compress else "x.idx")
    write_idx(path, 0x0B, values, compress)
    assert np.array_equal(read_idx(path), values.astype(np.int16))
    assert np.array_equal(read_idx(path, limit=1), values[:1].astype(np.int16))


def test_read_idx_rejects_bad_files(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "bad")
    write_idx(tmp_path / "short", 0x08, np.zeros((4, 3), dtype=np.uint8))
    data = (tmp_path / "short").read_bytes()
    (tmp_path / "short").write_bytes(data[:-2])
    with pytest.raises(ValueError, match="truncated"):
        read_idx(tmp_path / "short")


@installed
def test_test_split_is_balanced_and_limit_reads_a_prefix():
    images, labels = load_fashion_mnist("test")
    assert images.shape == (10_000, 28, 28) and images.dtype == torch.uint8
    assert labels.dtype == torch.int64
    assert torch.equal(labels.bincount(), torch.full((len(CLASS_NAMES),), 1000))
    head_images, head_labels = load_fashion_mnist("test", limit=50)
    assert torch.equal(head_images, images[:50]) and torch.equal(head_labels, labels[:50])


@installed
def test_groups_are_scaled_single_channel_images():
    samples = fashion_mnist_groups("train", limit=20)
    images, labels = load_fashion_mnist("train", limit=20)
    assert len(samples) == 20
    assert samples[3].obj.shape == (1, 28, 28)
    assert torch.allclose(samples[3].obj[0] * 255.0, images[3].float())
    assert [s.group for s in samples] == labels.tolist()


def test_missing_files_and_bad_split(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        load_fashion_mnist("train", directory=tmp_path)
    with pytest.raises(ValueError, match="choose from"):
        load_fashion_mnist("validation")
