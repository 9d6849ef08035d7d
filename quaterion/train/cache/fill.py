"""The fill: one inference pass of the frozen encoders over a split, in large batches. Loader
workers do the per-object work (`FillCollator`), the main process assigns rows (`RowMap`) and
runs the encoders; under DDP each process encodes every world-th batch and rows are exchanged."""

from __future__ import annotations

import copy
import hashlib
import logging
import numbers
from collections.abc import Callable, Hashable
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset

from quaterion.dataset.train_collator import TrainCollator, pre_collate_fn_of
from quaterion.train.cache import fingerprint as fp
from quaterion.train.cache.in_memory_cache_encoder import InMemoryCacheEncoder, RaggedRows
from quaterion.utils.distributed import (
    broadcast_object_from_zero,
    gather_rows,
    on_any_rank,
    rank_and_world,
)
from quaterion_models.utils.batching import length_order
from quaterion_models.utils.meta import merge_meta
from quaterion_models.utils.progress import track
from quaterion_models.utils.tensors import move_to_device

logger = logging.getLogger(__name__)
TEXT_WINDOW = 4096  # samples whose texts are sorted by length together


def label_view(sample: Any) -> Any:
    """`sample` without its objects (non-scalar dataclass fields set to None): what
    `collate_labels` needs, cheap to send back from a loader worker.

    Args:
        sample: a sample of the loader's dataset.
    """
    names = fp.dataclass_field_names(type(sample)) or ()
    heavy = [name for name in names if not _is_scalar(getattr(sample, name))]
    view = copy.copy(sample) if heavy else sample
    for name in heavy:
        object.__setattr__(view, name, None)  # frozen dataclasses too
    return view


def _is_scalar(value: Any) -> bool:
    if isinstance(value, torch.Tensor):  # first: an ABC check on a tensor costs microseconds
        return value.dim() == 0
    return value is None or isinstance(value, (int, float, str, bytes, numbers.Number))


class FillWindow(NamedTuple):
    """What a loader worker returns for a window of samples: one or more encoder batches."""

    ids: Tensor  # [n] object ids (CONTRACTS.md), in the order read
    batches: list[Tensor]  # positions (into the n objects) of each encoder batch
    data: dict[str, list[Any]]  # encoder -> each batch's collated objects
    meta: list[dict]  # merged meta per object (full cache)
    keys: dict[str, list[Hashable]]  # encoder -> cache key per object (key extractors only)
    object_digests: list[bytes]  # per object, with key extractors (to catch key clashes)
    labels: list[Any]  # label views of the samples (full cache)
    digests: list[bytes]  # per sample (when the data is fingerprinted)


class FillCollator(TrainCollator):
    """The fill's collator (picklable; runs in the loader workers): pre-collates a window's
    samples `batch_size` at a time, and collates texts in batches of similar length.

    Args:
        pre_collate_fn: the loader's `pre_collate_fn`.
        encoder_collates: the collate functions of the encoders being filled, by name.
        meta_extractors: the meta extractors of every cached encoder (full cache), else none.
        key_extractors: per encoder, the function mapping an object to its cache key.
        batch_size: samples per encoder batch.
        labels: also return the samples' label views, for the full cache's targets.
        digests: also return a digest of each sample (for the data fingerprint).
    """

    def __init__(self, pre_collate_fn: Callable, encoder_collates: dict, meta_extractors: dict,
                 key_extractors: dict, batch_size: int, labels: bool, digests: bool):  # fmt: skip
        super().__init__(pre_collate_fn, encoder_collates, meta_extractors)
        self.key_extractors, self.batch_size = key_extractors, batch_size
        self.labels, self.digests = labels, digests

    def __call__(self, window: list[tuple[int, Any]]) -> FillWindow:
        size = self.batch_size
        parts = [self.pre_collate_fn(window[i : i + size]) for i in range(0, len(window), size)]
        ids, objects = ([x for part in parts for x in part[column]] for column in (0, 1))
        order, sizes = length_order(objects) or range(len(objects)), [len(p[1]) for p in parts]
        ends = np.cumsum(sizes)  # texts: as many batches, as large, longest first
        batches = [torch.as_tensor(order[e - n : e]) for e, n in zip(ends, sizes, strict=True)]
        samples = [sample for _, sample in window]
        return FillWindow(
            ids=torch.as_tensor(ids, dtype=torch.long),
            batches=batches,
            data={
                name: [collate([objects[i] for i in batch.tolist()]) for batch in batches]
                for name, collate in self.encoder_collates.items()
            },
            meta=merge_meta({name: f(objects) for name, f in self.meta_extractors.items()}),
            keys={name: list(map(key, objects)) for name, key in self.key_extractors.items()},
            object_digests=list(map(fp.sample_digest, objects)) if self.key_extractors else [],
            labels=list(map(label_view, samples)) if self.labels else [],
            digests=list(map(fp.sample_digest, samples)) if self.digests else [],
        )


class RowMap:
    """Rows of a split's objects in a cache table, in order of first appearance: one per object
    id and view, or one per cache key (`encoder` has a key extractor), which duplicates share.
    A key given to two different objects is an error: one would get the other's row.

    Args:
        encoder: the encoder whose key extractor decides the rows; None: one row per object id.
    """

    def __init__(self, encoder: str | None = None):
        self.encoder, self.size = encoder, 0
        self._rows: dict[Hashable, tuple[int, bytes]] = {}  # key -> (row, object digest)
        self._assigned: list[tuple[int, Tensor, Tensor]] = []  # (view, object ids, rows)

    def assign(self, window: FillWindow, view: int) -> tuple[Tensor, Tensor]:
        """Give the window's objects their rows; returns them [n] and which are new [n].

        Args:
            window: a window of the fill.
            view: which reading of the data it comes from.
        """
        if self.encoder is None:  # object ids: each is new
            rows = torch.arange(self.size, self.size + len(window.ids))
        else:
            pairs = zip(window.keys[self.encoder], window.object_digests, strict=True)
            rows = torch.tensor([self._row(key, digest) for key, digest in pairs])
        fresh = torch.zeros(len(rows), dtype=torch.bool)  # the first object of each new row
        fresh[np.unique(rows.numpy(), return_index=True)[1]] = True
        fresh &= rows >= self.size
        self._assigned.append((view, window.ids, rows))
        self.size = max(self.size, int(rows.max()) + 1)
        return rows, fresh

    def _row(self, key: Hashable, digest: bytes) -> int:
        try:
            row, first = self._rows.setdefault(key, (len(self._rows), digest))
        except TypeError:
            raise TypeError(
                f"The key extractor of encoder '{self.encoder}' returned an unhashable "
                f"{type(key).__name__}; return a str, int or tuple"
            ) from None
        if first != digest:
            raise ValueError(
                f"The key extractor of encoder '{self.encoder}' gives the same key {key!r} to "
                "different objects; a key must identify its object (equal objects may share a key)"
            )
        return row

    def tensor(self) -> Tensor:
        """`[views, max id + 1]` the row of each view of each object id (-1 where none is)."""
        views = 1 + max(view for view, _, _ in self._assigned)
        row_map = torch.full((views, 1 + max(int(i.max()) for _, i, _ in self._assigned)), -1)
        for view, ids, rows in self._assigned:
            row_map[view, ids] = rows
        return row_map


class Fill(NamedTuple):
    """What the fill of a split gives training."""

    row_maps: dict[str, RowMap]  # cached encoder -> its row map (encoders may share one)
    tables: dict[str, Tensor | RaggedRows]  # encoder -> its rows
    fingerprint: str  # of the data (every sample of every view, loader class), or ""
    targets: dict[str, Tensor] | None  # collate_labels of every sample, in order (full cache)
    meta: list[dict] | None  # merged meta per object id (full cache); None when all empty


def fill_split(loader: Any, split: str, encoders: dict[str, InMemoryCacheEncoder], plan: Any,
               config: Any, device: torch.device, store: Any, write: bool, progress: bool
               ) -> Fill:  # fmt: skip
    """Fill `encoders`' rows of `split`: stored rows are reused when encoder and data
    fingerprints match and the file checks out; the rest are encoded (and stored if `write`).

    Args:
        loader: the user's loader of the split.
        split: `"train"` or `"val"`.
        encoders: the cache wrappers to fill, by name.
        plan: which encoders cache how (key extractors, and whether the cache is full).
        config: the `CacheConfig`.
        device: where the encoders run.
        store: the `save_dir` `CacheStore`, or None.
        write: write what was encoded to the store (rank 0 only).
        progress: draw a progress bar.
    """
    fingerprints = {  # no weights are hashed without a store
        name: f"{fp.encoder_fingerprint(encoder.wrapped_encoder)}|{config.storage_dtype}"
        f"|key:{fp.callable_fingerprint(plan.key_extractors.get(name))}"
        for name, encoder in (encoders.items() if store is not None else ())
    }
    # Under DDP, rank 0's fingerprints (transformers' save writes weights on rank 0 only), and
    # what any process must encode, all encode: each fill pass exchanges rows collectively.
    fingerprints = broadcast_object_from_zero(fingerprints)
    stored = {name: store.load(name, split, value) for name, value in fingerprints.items()}
    encode = on_any_rank({name for name in encoders if stored.get(name) is None}, encoders)
    args = (loader, split, encoders, plan.key_extractors, config, device, progress)
    fill = _pass(*args, encode, plan.full, store is not None)
    kept = set(encoders) - encode
    stale = on_any_rank({name for name in kept if stored[name][1] != fill.fingerprint
                         or len(stored[name][0]) != fill.row_maps[name].size}, kept)  # fmt: skip
    for name in sorted(kept):
        where = f"cache of encoder '{name}' ({split})"
        if name in stale:
            logger.warning("Rebuilding the %s: the data changed since it was stored", where)
            encode.add(name)
            fill.tables[name] = _pass(*args, {name}, False, False).tables[name]
        else:
            logger.info("Reusing the %s from %s", where, store.root)
            fill.tables[name] = stored[name][0]
    for name in encode & set(fingerprints) if write else ():
        store.save(name, split, fill.tables[name], fingerprints[name], fill.fingerprint)
    for name, table in fill.tables.items():
        fill.tables[name] = table.to(encoders[name].storage_device(device))
    return fill


def _pass(loader: Any, split: str, encoders: dict[str, InMemoryCacheEncoder],
          key_extractors: dict[str, Callable], config: Any, device: torch.device, progress: bool,
          encode: set[str], full: bool, fingerprint: bool) -> Fill:  # fmt: skip
    """Read `loader`'s data (`config.views` times for training): assign rows for every cached
    encoder, run those in `encode`, fingerprint the data, and if `full` collect targets and meta."""
    workers, data = config.num_workers, loader.dataset
    if workers is None or isinstance(data, IterableDataset):
        workers = loader.num_workers  # iterable data: object ids depend on the worker count
    modules = {name: encoders[name].fill_encoder for name in sorted(encode)}
    size = config.batch_size or loader.batch_size or 1
    collator = FillCollator(
        pre_collate_fn_of(loader.collate_fn),
        {name: module.get_collate_fn() for name, module in modules.items()},
        {name: encoder.get_meta_extractor() for name, encoder in encoders.items()} if full else {},
        key_extractors, size, full, fingerprint,
    )  # fmt: skip
    texts = not isinstance(data, IterableDataset) and len(data) > 0  # sorted in windows
    texts = texts and length_order(collator.pre_collate_fn([data[0]])[1]) is not None
    fill_loader = DataLoader(
        data,
        batch_size=size * max(1, TEXT_WINDOW // size) if texts else size,
        num_workers=workers,
        collate_fn=collator,
        pin_memory=device.type == "cuda",
        worker_init_fn=loader.worker_init_fn,
        multiprocessing_context=loader.multiprocessing_context if workers > 0 else None,
    )
    shared = RowMap()
    row_maps = {name: RowMap(name) if name in key_extractors else shared for name in encoders}
    storage = {name: encoders[name].storage_device(device) for name in modules}
    parts: dict[str, list] = {name: [] for name in modules}  # (new rows, their values)
    finite: dict[str, list] = {name: [] for name in modules}  # (batch, all finite): checked last
    digest = hashlib.blake2b(digest_size=fp.DIGEST_SIZE)
    labels, meta_chunks, modes = [], [], {name: m.training for name, m in modules.items()}
    rank, world = rank_and_world()  # under DDP each process encodes every world-th batch
    views = config.views if split == "train" else 1
    bar = {"description": f"Caching {split}", "enabled": progress}
    windows = ((view, window) for view in range(views) for window in track(fill_loader, **bar))
    index = -1
    try:
        for module in modules.values():
            module.to(device).eval()
        for view, window in windows:
            digest.update(b"".join(window.digests))
            if view == 0:
                labels.extend(window.labels)
                meta_chunks.append((window.ids, window.meta))
            assigned = {row_map: row_map.assign(window, view) for row_map in {*row_maps.values()}}
            for number, positions in enumerate(window.batches):
                index += 1
                for name, module in modules.items():
                    if index % world != rank:
                        continue  # another process's share
                    with torch.inference_mode():
                        output = module(move_to_device(window.data[name][number], device))
                    values = output[0] if isinstance(output, tuple) else output
                    finite[name].append((index, torch.isfinite(values).all()))
                    rows, fresh = (tensor[positions] for tensor in assigned[row_maps[name]])
                    dtype = config.storage_dtype or values.dtype
                    if isinstance(output, tuple):  # a frozen bottom: each object's real positions
                        mask = output[1].bool()
                        values = [values[i][mask[i]].to(storage[name], dtype)
                                  for i in fresh.nonzero().flatten().tolist()]  # fmt: skip
                    else:
                        values = values[fresh.to(values.device)].to(storage[name], dtype)
                    parts[name].append((rows[fresh], values))
    finally:
        for name, module in modules.items():
            module.train(modes[name])
    if not meta_chunks:
        raise ValueError(
            f"The {split} loader yielded no samples; pass a dataset with at least one sample"
        )
    tables = {name: _table(name, split, encoders[name], parts[name], finite[name],
                           row_maps[name].size, config.storage_dtype, storage[name])
              for name in modules}  # fmt: skip
    digest.update(f"|{type(loader).__qualname__}".encode())  # the sample count: 16 bytes each
    meta = None
    if any(any(items) for _, items in meta_chunks):  # one merged meta dict per object id
        meta = [{}] * (max(int(ids.max()) for ids, _ in meta_chunks) + 1)
        for ids, items in meta_chunks:
            for object_id, item in zip(ids.tolist(), items, strict=True):
                meta[object_id] = item
    targets = type(loader).collate_labels(labels) if full else None
    return Fill(row_maps, tables, digest.hexdigest() if fingerprint else "", targets, meta)


def _table(name: str, split: str, encoder: InMemoryCacheEncoder, parts: list, finite: list,
           size: int, dtype: torch.dtype | None, device: torch.device
           ) -> Tensor | RaggedRows:  # fmt: skip
    """One encoder's rows from every process's parts `(rows, values)`; ValueError naming the
    first fill batch whose output held NaN or infinite values."""
    rows = torch.cat([rows for rows, _ in parts] or [torch.empty(0, dtype=torch.long)])
    bad = torch.tensor([index for index, _ in finite], dtype=torch.long)
    bad = bad[~torch.stack([flag for _, flag in finite]).cpu()] if finite else bad
    if encoder.trainable:  # ragged rows: each object's [length, D], exchanged with their lengths
        objects = [values for _, chunk in parts for values in chunk]
        width = encoder.fill_encoder.embedding_size
        empty = torch.empty(0, width, dtype=dtype or torch.float32, device=device)
        lengths = torch.tensor([len(values) for values in objects], dtype=torch.long)
        rows, lengths, values, bad = gather_rows(rows, lengths, torch.cat(objects or [empty]), bad)
        starts = torch.cumsum(lengths, 0) - lengths  # of each gathered object in `values`
        order = torch.argsort(rows)
        lengths, offsets = lengths[order], torch.zeros(size + 1, dtype=torch.long)
        offsets[1:] = torch.cumsum(lengths, 0)
        within = torch.arange(int(offsets[-1])) - torch.repeat_interleave(offsets[:-1], lengths)
        positions = torch.repeat_interleave(starts[order], lengths) + within  # in row order
        table = RaggedRows(values[positions.to(values.device)], offsets.to(device))
    else:
        empty = torch.empty(0, encoder.embedding_size, dtype=dtype or torch.float32, device=device)
        values = torch.cat([v for _, v in parts] or [empty])
        parts.clear()  # the batches' copies go before the table is made: peak twice the table
        rows, values, bad = gather_rows(rows, values, bad)
        if torch.equal(rows, torch.arange(size, device=rows.device)):  # rows already in order
            table = values
        else:
            table = values.new_empty((size, values.shape[1]))
            table[rows.to(values.device)] = values
    if len(bad):
        raise ValueError(
            f"Encoder '{name}' gave NaN or infinite embeddings in {split} fill batch "
            f"{int(bad.min())}; check the encoder and its inputs before caching them"
        )
    return table
