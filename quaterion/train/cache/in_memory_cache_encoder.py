"""`InMemoryCacheEncoder`: a frozen encoder's embeddings as one table of rows per split."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

import torch
from torch import Tensor

from quaterion.train.cache.cache_config import CacheType
from quaterion.train.cache.cache_encoder import CacheEncoder
from quaterion_models.encoders import Encoder


@dataclass
class RaggedRows:
    """Rows of different lengths without padding: row i is `values[offsets[i]:offsets[i + 1]]`
    (what a partly trainable encoder's frozen bottom caches: each object's real token states).

    Args:
        values: `[total length, D]` every row's values, concatenated in row order.
        offsets: `[rows + 1]` where each row starts (and the total length last).
    """

    values: Tensor
    offsets: Tensor

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def nbytes(self) -> int:
        """Bytes held (values and offsets)."""
        return sum(t.numel() * t.element_size() for t in (self.values, self.offsets))

    @property
    def device(self) -> torch.device:
        """Where the rows are."""
        return self.values.device

    def to(self, device: torch.device) -> RaggedRows:
        """These rows on `device`.

        Args:
            device: the target device.
        """
        return RaggedRows(self.values.to(device), self.offsets.to(device))

    def gather(self, rows: Tensor) -> tuple[Tensor, Tensor]:
        """Rows `rows` [B], padded with zeros to the longest: `(values [B, T, D], mask [B, T])`.

        Args:
            rows: LongTensor of row numbers, on the rows' device.
        """
        starts, lengths = self.offsets[rows], self.offsets[rows + 1] - self.offsets[rows]
        positions = torch.arange(int(lengths.max()) if len(rows) else 0, device=rows.device)
        mask = positions.unsqueeze(0) < lengths.unsqueeze(1)  # [B, T]
        padded = self.values.new_zeros((len(rows), len(positions), self.values.shape[1]))
        padded[mask] = self.values.index_select(0, (starts.unsqueeze(1) + positions)[mask])
        return padded, mask.long()


class InMemoryCacheEncoder(CacheEncoder):
    """Keeps the wrapped encoder's embeddings in RAM (`CPU`) or on a device (`GPU`, `AUTO`); for a
    partly trainable encoder, its frozen bottom's output (`RaggedRows`), from which `forward`
    computes the embeddings through the trainable top. Each split has a table of rows and a row
    map; rows are numbered across splits in the order they were added, so `forward(rows)` takes
    one split's rows, as the training loaders give them.

    Args:
        encoder: the frozen encoder to wrap.
        cache_type: where the rows live.
    """

    def __init__(self, encoder: Encoder, cache_type: CacheType = CacheType.AUTO):
        super().__init__(encoder)
        self._cache_type = CacheType(cache_type)
        self._tables: dict[str, Tensor | RaggedRows] = {}
        self._row_maps: dict[str, Tensor] = {}  # split -> [views, object ids] rows
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
        """Number of stored rows (all splits and views)."""
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

    def add_split(self, split: str, table: Tensor | RaggedRows, row_map: Tensor) -> Tensor:
        """Keep `split`'s rows; returns `row_map` in this encoder's numbering (for batches).

        Args:
            split: `"train"` or `"val"`.
            table: the split's rows, `[n, D]` or `RaggedRows`.
            row_map: `[views, object ids]` the row of each view of each object.
        """
        self._starts.append(self.num_rows)
        self._tables[split], self._row_maps[split] = table, row_map
        return row_map + self._starts[-1]

    def rows(self, split: str | None = None) -> Tensor | RaggedRows:
        """The stored rows of `split` (`RaggedRows` when partly trainable); all by default.

        Args:
            split: a split, or None for all of them.
        """
        if not self._tables:
            raise RuntimeError("The cache is empty: fill it (setup_cache) before reading rows")
        return self._tables[split] if split else torch.cat(list(self._tables.values()))

    ragged = rows

    def embeddings(self, split: str) -> Tensor:
        """`[objects, D]` the cached embeddings (first view) of `split`, in object-id order.

        Args:
            split: `"train"` or `"val"`.
        """
        start = self._starts[list(self._tables).index(split)]
        return self.forward(self._row_maps[split][0] + start)

    def forward(self, batch: Tensor) -> Tensor:
        """Cache rows [B] (LongTensor, one split's) -> float embeddings [B, D] on their device."""
        if not self._tables:
            raise RuntimeError(
                "The cache of this encoder is empty: it is filled by setup_cache (Quaterion.fit)"
            )
        several = len(self._starts) > 1 and len(batch) > 0
        index = bisect_right(self._starts, int(batch[0])) - 1 if several else 0
        table = list(self._tables.values())[index]
        rows = batch.to(table.device)
        rows = rows - self._starts[index] if index else rows
        if isinstance(table, RaggedRows):
            values, mask = (tensor.to(batch.device) for tensor in table.gather(rows))
            return self._encoder.forward_upper(values.float(), mask)
        embeddings = table.index_select(0, rows)
        half = embeddings.dtype in (torch.float16, torch.bfloat16)  # CacheConfig.storage_dtype
        return embeddings.to(batch.device, torch.float32 if half else embeddings.dtype)
