"""`InMemoryCacheEncoder`: a frozen encoder's embeddings as one contiguous [N, D] tensor."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from quaterion.train.cache.cache_config import CacheType
from quaterion.train.cache.cache_encoder import CacheEncoder
from quaterion_models.encoders import Encoder
from quaterion_models.utils.tensors import move_to_device


class InMemoryCacheEncoder(CacheEncoder):
    """Keeps the wrapped encoder's embeddings in RAM (`CPU`) or on a device (`GPU`, `AUTO`).

    Rows of every split sit in one tensor `[num_rows, D]`; a split is a range of rows.
    `fill_cache(rows, batch, device)` runs the encoder once on a collated batch and stores the
    result at `rows`; `forward(rows)` gathers stored rows onto the device of `rows`.
    """

    def __init__(self, encoder: Encoder, cache_type: CacheType = CacheType.AUTO):
        super().__init__(encoder)
        if cache_type in (None, CacheType.NONE):
            raise ValueError(
                f"InMemoryCacheEncoder needs a storage place, got cache_type={cache_type!r}; "
                f"use one of {[t.value for t in CacheType if t is not CacheType.NONE]}"
            )
        self._cache_type = CacheType(cache_type)
        self._table: Tensor | None = None  # [capacity, D]; rows >= num_rows are unused
        self._num_rows = 0

    @property
    def cache_type(self) -> CacheType:
        """Where the rows are kept."""
        return self._cache_type

    @property
    def is_filled(self) -> bool:
        return self._table is not None

    @property
    def num_rows(self) -> int:
        """Number of stored rows (all splits)."""
        return self._num_rows

    def storage_device(self, compute_device: torch.device) -> torch.device:
        """Where rows computed on `compute_device` are kept, per `cache_type`."""
        if self._cache_type is CacheType.CPU:
            return torch.device("cpu")
        if self._cache_type is CacheType.GPU and compute_device.type != "cuda":
            if not torch.cuda.is_available():
                raise ValueError(
                    "CacheType.GPU keeps embeddings on a CUDA device, but CUDA is not available; "
                    "use CacheType.CPU or CacheType.AUTO"
                )
            return torch.device("cuda", torch.cuda.current_device())
        return compute_device

    def reset_cache(self) -> None:
        self._table = None
        self._num_rows = 0

    def rows(self, start: int = 0, stop: int | None = None) -> Tensor:
        """View of stored rows `[start, stop)` (all rows by default)."""
        if self._table is None:
            raise RuntimeError("The cache is empty: fill it (setup_cache) before reading rows")
        stop = self._num_rows if stop is None else stop
        return self._table[start:stop]

    def fill_cache(
        self, rows: Tensor, batch: Any, device: torch.device, capacity_hint: int = 0
    ) -> Tensor:
        """Encode the collated `batch` on `device` (inference mode), store it at `rows` [B] and
        return it [B, D]. `capacity_hint`: rows the table needs in the end (one allocation)."""
        with torch.inference_mode():
            embeddings = self.wrapped_encoder(move_to_device(batch, device))  # [B, D]
        self.write_rows(rows, embeddings, self.storage_device(device), capacity_hint)
        return embeddings

    def write_rows(
        self, rows: Tensor, values: Tensor, storage: torch.device, capacity_hint: int = 0
    ) -> None:
        """Store `values` [B, D] at `rows` [B], growing the table on `storage` as needed."""
        needed = int(rows.max()) + 1 if len(rows) else 0
        self.reserve(max(needed, capacity_hint), values.shape[1], values.dtype, storage)
        self._table.index_copy_(0, rows.to(storage), values.to(storage))
        self._num_rows = max(self._num_rows, needed)

    def put_rows(self, start: int, values: Tensor, storage: torch.device) -> None:
        """Store a block of rows `values` [n, D] at `[start, start + n)`."""
        stop = start + len(values)
        self.reserve(stop, values.shape[1], values.dtype, storage)
        self._table[start:stop] = values.to(storage)
        self._num_rows = max(self._num_rows, stop)

    def reserve(self, capacity: int, width: int, dtype: torch.dtype, storage: torch.device) -> None:
        """Make room for `capacity` rows (doubling, so repeated growth stays linear)."""
        table = self._table
        if table is not None and len(table) >= capacity:
            return
        size = capacity if table is None else max(capacity, 2 * len(table))
        grown = torch.empty((size, width), dtype=dtype, device=storage)
        if table is not None:
            grown[: self._num_rows] = table[: self._num_rows]
        self._table = grown

    def finish_fill(self) -> None:
        """Release unused capacity once every split is in."""
        if self._table is not None and len(self._table) > self._num_rows:
            self._table = self._table[: self._num_rows].clone()

    def forward(self, batch: Tensor) -> Tensor:
        """Cache rows [B] (LongTensor) -> stored embeddings [B, D] on the device of `batch`."""
        table = self._table
        if table is None:
            raise RuntimeError(
                "The cache of this encoder is empty: it is filled by setup_cache (Quaterion.fit)"
            )
        return table.index_select(0, batch.to(table.device)).to(batch.device)
