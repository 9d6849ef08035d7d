"""Configuration of Cross-Batch Memory (XBM)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class XbmDevice(str, Enum):
    """Where the XBM buffer lives."""

    CPU = "cpu"
    CUDA = "cuda"
    AUTO = "auto"  # on the device the embeddings come from


@dataclass
class XbmConfig:
    """Cross-Batch Memory settings (Wang et al., 2020, https://arxiv.org/abs/1912.06798).

    Args:
        weight: factor of the memory loss added to the regular loss.
        buffer_size: number of recent embeddings kept in the ring buffer.
        start_iteration: first global step at which the buffer is fed and the memory loss applied.
        device: device of the buffer (`auto`: where the embeddings are).
    """

    # factor of the memory loss added to the regular loss
    weight: float = 1.0
    # number of recent embeddings kept in the ring buffer
    buffer_size: int = 10000
    # first global step at which the buffer is fed and the memory loss applied
    start_iteration: int = 1000
    # device of the buffer
    device: XbmDevice = XbmDevice.AUTO
