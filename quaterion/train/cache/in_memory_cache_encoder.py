"""`InMemoryCacheEncoder`: a frozen encoder's embeddings as one [rows, D] tensor per split."""

from __future__ import annotations

from bisect import bisect_right

import torch
from torch import Tensor

from quaterion.train.cache.cache_config import CacheType
from quaterion.train.cache.cache_encoder import CacheEncoder
from quaterion_models.encoders import Encoder


class InMemoryCacheEncoder(CacheEncoder):
    """Keeps the wrapped encoder's embeddings in RAM (`CPU`) or on a device (`GPU`, `AUTO`).

    Each split has one table [rows, D] and a row map (object id -> row of that table). Rows
    are numbered across splits in the order they were added, so `forward(rows)` takes one
    split's rows (as the training loaders give them) and gathers them onto their device.

    Args:
        encoder: the frozen encoder to wrap.
        cache_type: where the rows live.
    """

    def __init__(self, encoder: Encoder, cache_type: CacheType = CacheType.AUTO):
        super().__init__(encoder)
        self._cache_type = CacheType(cache_type)
        self._tables: dict[str, Tensor] = {}
        self._row_maps: dict[str, Tensor] = {}
        self._starts: list[int] = []  # first row of each split

    @property
    def cache_type(self) -> CacheType:
        """Where the rows are kept."""
        return self._cache_type

    @property
    def is_filled(self) -> bool:
        return bool(self._tables)

    @property
    def num_rows(self) -> int:
        """Number of stored rows (all splits)."""
        return sum(len(table) for table in self._tables.values())

    def storage_device(self, compute_device: torch.device) -> torch.device:
        """Where rows computed on `compute_device` are kept, per `cache_type`.

        Args:
            compute_device: where the encoder ran.
        """
        if self._cache_type is CacheType.CPU:
            return torch.device("cpu")
        if self._cache_type is CacheType.GPU and compute_device.type != "cuda":
            return torch.device("cuda", torch.cuda.current_device())
        return compute_device

    def add_split(self, split: str, table: Tensor, row_map: Tensor) -> Tensor:
        """Keep `split`'s rows `table` [n, D], whose object ids map to rows by `row_map`;
        returns the row map in this encoder's numbering (what training batches carry).

        Args:
            split: `"train"` or `"val"`.
            table: `[n, D]` the split's rows.
            row_map: object id -> row.
        """
        self._starts.append(self.num_rows)
        self._tables[split], self._row_maps[split] = table, row_map
        return row_map + self._starts[-1]

    def rows(self, split: str | None = None) -> Tensor:
        """The stored rows of `split` [n, D] (all splits, concatenated, by default).

        Args:
            split: a split, or None for all of them.
        """
        if not self._tables:
            raise RuntimeError("The cache is empty: fill it (setup_cache) before reading rows")
        return self._tables[split] if split else torch.cat(list(self._tables.values()))

    def embeddings(self, split: str) -> Tensor:
        """The cached embeddings of `split`'s objects [num objects, D], in object-id order.

        Args:
            split: `"train"` or `"val"`.
        """
        return self._tables[split][self._row_maps[split].to(self._tables[split].device)]

    def forward(self, batch: Tensor) -> Tensor:
        """Cache rows [B] (LongTensor, one split's) -> stored embeddings [B, D] on their device."""
        if not self._tables:
            raise RuntimeError(
                "The cache of this encoder is empty: it is filled by setup_cache (Quaterion.fit)"
            )
        several = len(self._starts) > 1 and len(batch) > 0
        index = bisect_right(self._starts, int(batch[0])) - 1 if several else 0
        table = list(self._tables.values())[index]
        rows = batch.to(table.device)
        rows = rows - self._starts[index] if index else rows
        embeddings = table.index_select(0, rows)
        half = embeddings.dtype in (torch.float16, torch.bfloat16)  # CacheConfig.storage_dtype
        return embeddings.to(batch.device, torch.float32 if half else embeddings.dtype)
