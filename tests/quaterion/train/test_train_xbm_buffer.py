"""XbmBuffer is a FIFO ring buffer: checked against collections.deque(maxlen=buffer_size)."""

from collections import deque

import pytest
import torch

from quaterion.train.xbm import XbmConfig, XbmDevice
from quaterion.train.xbm.xbm_buffer import XbmBuffer


def rows(start, count, dim=3):
    """Batch whose row i is filled with the value start + i (so rows are identifiable)."""
    values = torch.arange(start, start + count, dtype=torch.float)
    return values[:, None].expand(count, dim).clone(), values.long()


def check_against_deque(batch_sizes, buffer_size):
    buffer = XbmBuffer(XbmConfig(buffer_size=buffer_size, device=XbmDevice.CPU), embedding_size=3)
    oracle = deque(maxlen=buffer_size)
    start = 0
    for size in batch_sizes:
        embeddings, groups = rows(start, size)
        buffer.queue(embeddings, groups)
        oracle.extend(range(start, start + size))
        start += size
        memory, memory_groups = buffer.get()
        assert memory_groups.tolist() == list(oracle)  # oldest first, oldest evicted first
        assert memory[:, 0].tolist() == [float(v) for v in oracle]
        assert len(buffer) == len(oracle)
        assert buffer.is_full == (len(oracle) == buffer_size)


def test_wrap_around_evicts_oldest_rows_first():
    check_against_deque([2, 2, 2, 3, 1], buffer_size=5)


def test_batches_larger_than_the_buffer_keep_the_newest_rows():
    check_against_deque([7, 2, 12, 1], buffer_size=5)


def test_random_batch_sizes_behave_like_a_deque():
    sizes = torch.randint(1, 9, (40,), generator=torch.Generator().manual_seed(3)).tolist()
    check_against_deque(sizes, buffer_size=11)


def test_get_returns_copies_and_empty_buffer_is_empty():
    buffer = XbmBuffer(XbmConfig(buffer_size=4), embedding_size=3)
    memory, groups = buffer.get()
    assert memory.shape == (0, 3) and groups.shape == (0,)
    buffer.queue(*rows(0, 2))
    memory, _ = buffer.get()
    buffer.queue(*rows(10, 4))
    assert memory[:, 0].tolist() == [0.0, 1.0]


def test_auto_device_follows_embeddings_and_bad_config_fails_early():
    buffer = XbmBuffer(XbmConfig(buffer_size=4, device=XbmDevice.AUTO), embedding_size=3)
    embeddings, groups = rows(0, 2)
    buffer.queue(embeddings.double(), groups)
    memory, _ = buffer.get()
    assert memory.device == embeddings.device and memory.dtype == torch.float64
    with pytest.raises(ValueError, match="buffer_size must be >= 1"):
        XbmBuffer(XbmConfig(buffer_size=0), embedding_size=3)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            XbmBuffer(XbmConfig(device=XbmDevice.CUDA), embedding_size=3)
