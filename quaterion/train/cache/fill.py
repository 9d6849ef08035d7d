"""The fill pass: one inference run of the frozen encoders over a split, in large batches.

Loader workers do the per-object work (`FillCollator`: pre-collate, each encoder's collate,
cache keys, merged meta, label views, sample digests); the main process assigns rows
(`RowMap`) and runs the encoders. The same pass fingerprints the data, so a split is read once
when the cache is (re)built, and once without encoding when stored rows are reused.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import numbers
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset

from quaterion.dataset.similarity_data_loader import SimilarityDataLoader
from quaterion.dataset.train_collator import TrainCollator
from quaterion.train.cache import fingerprint as fp
from quaterion.train.cache.in_memory_cache_encoder import InMemoryCacheEncoder, RaggedRows
from quaterion.train.cache.store import CacheStore
from quaterion.utils.distributed import gather_rows, rank_and_world
from quaterion_models.utils.progress import track
from quaterion_models.utils.tensors import move_to_device

logger = logging.getLogger(__name__)


def label_view(sample: Any) -> Any:
    """`sample` without its objects (non-scalar dataclass fields set to None): what
    `collate_labels` needs, cheap to send back from a loader worker.

    Args:
        sample: a sample of the loader's dataset.
    """
    heavy = [
        name
        for name in fp.dataclass_field_names(type(sample)) or ()
        if not _is_scalar(getattr(sample, name))
    ]
    view = copy.copy(sample) if heavy else sample
    for name in heavy:
        object.__setattr__(view, name, None)  # frozen dataclasses too
    return view


def _is_scalar(value: Any) -> bool:
    if isinstance(value, torch.Tensor):  # first: an ABC check on a tensor costs microseconds
        return value.dim() == 0
    return value is None or isinstance(value, (int, float, str, bytes, numbers.Number))


class FillBatch(NamedTuple):
    """What a loader worker returns for one batch of the fill pass."""

    ids: Tensor  # [n_objects] object ids (CONTRACTS.md)
    features: dict[str, Any]  # {"data": encoder -> collated objects, "meta": merged meta}
    keys: dict[str, list[Hashable]]  # encoder -> cache key per object (key extractors only)
    object_digests: list[bytes]  # per object, with key extractors (to catch key clashes)
    labels: list[Any]  # label views of the samples (full cache)
    digests: list[bytes]  # per sample (when the data is fingerprinted)


class FillCollator(TrainCollator):
    """The fill pass's collator (picklable; runs in the loader workers).

    Args:
        pre_collate_fn: the loader's `pre_collate_fn`.
        encoder_collates: the collate functions of the encoders being filled, by name.
        meta_extractors: their meta extractors, by name.
        key_extractors: per encoder, the function mapping an object to its cache key.
        full: every encoder is cached: also return the labels, for the full cache's targets.
        digests: also return a digest of each sample (for the data fingerprint).
    """

    def __init__(self, pre_collate_fn: Callable, encoder_collates: dict, meta_extractors: dict,
                 key_extractors: dict, full: bool, digests: bool):  # fmt: skip
        super().__init__(pre_collate_fn, encoder_collates, meta_extractors)
        self.key_extractors, self.full, self.digests = key_extractors, full, digests

    def __call__(self, batch: list[tuple[int, Any]]) -> FillBatch:
        ids, objects, _ = self.pre_collate_fn(batch)
        samples = [sample for _, sample in batch]
        return FillBatch(
            ids=torch.as_tensor(ids, dtype=torch.long),
            features=self.collate_objects(ids, objects),
            keys={name: list(map(key, objects)) for name, key in self.key_extractors.items()},
            object_digests=list(map(fp.sample_digest, objects)) if self.key_extractors else [],
            labels=list(map(label_view, samples)) if self.full else [],
            digests=list(map(fp.sample_digest, samples)) if self.digests else [],
        )


class RowMap:
    """Rows of a split's objects in a cache table, in order of first appearance: one per
    object id, or one per cache key (`encoder` has a key extractor), which duplicates share.
    A key given to two different objects is an error: one would get the other's embedding.

    Args:
        encoder: the encoder whose key extractor decides the rows, named in errors; None: one row
            per object id.
    """

    def __init__(self, encoder: str | None = None):
        self.encoder, self.size = encoder, 0
        self._rows: dict[Hashable, tuple[int, bytes]] = {}  # key -> (row, object digest)
        self._ids: list[Tensor] = []
        self._assigned: list[Tensor] = []

    def assign(self, batch: FillBatch) -> tuple[Tensor, Tensor]:
        """Give the batch's objects their rows; returns them [B] and which are new [B].

        Args:
            batch: one batch of the fill pass.
        """
        if self.encoder is None:  # object ids: each is new
            rows = torch.arange(self.size, self.size + len(batch.ids))
        else:
            pairs = zip(batch.keys[self.encoder], batch.object_digests, strict=True)
            rows = torch.tensor([self._row(key, digest) for key, digest in pairs])
        fresh = torch.zeros(len(rows), dtype=torch.bool)  # the first object of each new row
        fresh[np.unique(rows.numpy(), return_index=True)[1]] = True
        fresh &= rows >= self.size
        self._ids.append(batch.ids)
        self._assigned.append(rows)
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
        """Object id -> row [max id + 1] (-1 where no object has that id)."""
        ids = torch.cat(self._ids)
        row_map = torch.full((int(ids.max()) + 1,), -1, dtype=torch.long)
        row_map[ids] = torch.cat(self._assigned)
        return row_map


@dataclass
class FillSettings:
    """How the fill pass runs.

    Args:
        device: where the encoders run.
        batch_size: fill batch size (None: the loader's).
        num_workers: fill loader workers (None: the loader's).
        storage_dtype: dtype the rows are stored in (None: as computed).
        progress: draw a progress bar.
    """

    device: torch.device  # where the encoders run
    batch_size: int | None  # None: the source loader's batch size
    num_workers: int | None  # None: the source loader's num_workers
    storage_dtype: torch.dtype | None  # None: as the encoders give them
    progress: bool = True


@dataclass
class SplitFill:
    """What one pass over a split learned.

    Args:
        row_maps: cached encoder -> its row map (encoders may share one).
        tables: encoder -> rows `[n, D]`.
        fingerprint: of the data (every sample, loader class, sample count), or "".
        targets: `collate_labels` of every sample, in order (full cache), else None.
        meta: merged meta per object id (full cache); None when all are empty.
    """

    row_maps: dict[str, RowMap]  # cached encoder -> its row map (encoders may share one)
    tables: dict[str, Tensor]  # encoder -> rows [n, D]
    fingerprint: str  # of the data (every sample, loader class, sample count) or ""
    targets: dict[str, Tensor] | None  # collate_labels of every sample, in order (full cache)
    meta: list[dict] | None  # merged meta per object id (full cache); None when all empty


def fill_split(loader: SimilarityDataLoader, split: str, encoders: dict[str, InMemoryCacheEncoder],
               key_extractors: dict[str, Callable], full: bool, settings: FillSettings,
               store: CacheStore | None = None, write: bool = False) -> SplitFill:  # fmt: skip
    """Fill `encoders`' rows of `split`: stored rows are reused when encoder and data
    fingerprints match and the file checks out; the rest are encoded (and stored if `write`).

    Args:
        loader: the user's loader of the split.
        split: `"train"` or `"val"`.
        encoders: the cache wrappers to fill, by name.
        key_extractors: per encoder, its key extractor (if any).
        full: every encoder is cached: also collect the targets.
        settings: how the pass runs.
        store: the `save_dir` store, or None.
        write: write what was encoded to the store (rank 0 only).
    """
    fingerprints = {  # no weights are hashed without a store; ragged rows are kept in memory
        name: f"{fp.encoder_fingerprint(encoder.wrapped_encoder)}|{settings.storage_dtype}"
        f"|key:{fp.callable_fingerprint(key_extractors.get(name))}"
        for name, encoder in (encoders.items() if store is not None else ())
        if not encoder.trainable
    }
    entries = {name: store.entry(name, split, value) for name, value in fingerprints.items()}
    encode = {name for name in encoders if name not in entries or entries[name] is None}
    result = _pass(
        loader, split, encoders, encode, key_extractors, full, store is not None, settings
    )
    for name in set(encoders) - encode:
        rows = store.load(
            name, split, entries[name], result.fingerprint, result.row_maps[name].size
        )
        if rows is None:
            encode.add(name)
            result.tables.update(_pass(loader, split, encoders, {name}, key_extractors, False,
                                       False, settings).tables)  # fmt: skip
        else:
            result.tables[name] = rows
    for name in encode if write and store is not None else ():
        store.save(name, split, result.tables[name], fingerprints[name], result.fingerprint)
    for name, table in result.tables.items():
        result.tables[name] = table.to(encoders[name].storage_device(settings.device))
    return result


def _pass(loader: SimilarityDataLoader, split: str, encoders: dict[str, InMemoryCacheEncoder],
          encode: set[str], key_extractors: dict[str, Callable], full: bool, fingerprint: bool,
          settings: FillSettings) -> SplitFill:  # fmt: skip
    """Read `loader`'s data once: assign rows for every cached encoder, run the encoders in
    `encode`, fingerprint the data, and with `full` collect its targets and meta."""
    workers = settings.num_workers
    if workers is None or isinstance(loader.dataset, IterableDataset):
        workers = loader.num_workers  # iterable data: object ids depend on the worker count
    modules = {name: encoders[name].fill_encoder for name in sorted(encode)}
    collator = FillCollator.for_encoders(loader.collate_fn, modules, key_extractors=key_extractors,
                                         full=full, digests=fingerprint)  # fmt: skip
    if full:  # meta of every cached encoder, merged once; else none is needed
        collator.meta_extractors = {name: e.get_meta_extractor() for name, e in encoders.items()}
    else:
        collator.meta_extractors = {}
    fill_loader = DataLoader(
        loader.dataset,
        batch_size=settings.batch_size or loader.batch_size or 1,
        num_workers=workers,
        collate_fn=collator,
        pin_memory=settings.device.type == "cuda",
        worker_init_fn=loader.worker_init_fn,
        multiprocessing_context=loader.multiprocessing_context if workers > 0 else None,
    )
    default = RowMap()
    row_maps = {name: RowMap(name) if name in key_extractors else default for name in encoders}
    storage = {name: encoders[name].storage_device(settings.device) for name in modules}
    chunks: dict[str, list] = {name: [] for name in modules}  # (new rows, their embeddings)
    finite: dict[str, list] = {name: [] for name in modules}  # (batch, all finite): checked last
    digest = hashlib.blake2b(digest_size=fp.DIGEST_SIZE)
    labels, meta_chunks, modes = [], [], {name: m.training for name, m in modules.items()}
    rank, world = rank_and_world()  # under DDP each process encodes every world-th batch
    try:
        for module in modules.values():
            module.to(settings.device).eval()
        batches = track(fill_loader, _length(fill_loader), f"Caching {split}", settings.progress)
        for index, batch in enumerate(batches):
            digest.update(b"".join(batch.digests))
            labels.extend(batch.labels)
            meta_chunks.append((batch.ids, batch.features["meta"]))
            assigned = {row_map: row_map.assign(batch) for row_map in {*row_maps.values()}}
            for name, module in modules.items():
                if index % world != rank and not encoders[name].trainable:
                    continue  # another process's share (ragged rows: every process's)
                with torch.inference_mode():
                    inputs = move_to_device(batch.features["data"][name], settings.device)
                    embeddings = module(inputs)
                rows, fresh = assigned[row_maps[name]]
                if isinstance(embeddings, tuple):  # a frozen bottom: each object's real positions
                    values, mask = embeddings
                    keep = fresh.nonzero().flatten().tolist()
                    finite[name].append((index, torch.isfinite(values).all()))
                    dtype = settings.storage_dtype or values.dtype
                    objects = [values[i][mask[i].bool()].to(storage[name], dtype) for i in keep]
                    chunks[name].append((rows[fresh], objects))
                    continue
                embeddings = embeddings[fresh.to(embeddings.device)]
                finite[name].append((index, torch.isfinite(embeddings).all()))
                dtype = settings.storage_dtype or embeddings.dtype
                chunks[name].append((rows[fresh], embeddings.to(storage[name], dtype)))
    finally:
        for name, module in modules.items():
            module.train(modes[name])
    if not meta_chunks:
        raise ValueError(
            f"The {split} loader yielded no samples; pass a dataset with at least one sample"
        )
    tables = {}
    for name, parts in chunks.items():  # every process's rows (in rank order), once allocated
        if encoders[name].trainable:
            _check_finite(name, split, finite[name])
            tables[name] = _ragged(parts, row_maps[name].size)
            continue
        width, dtype = encoders[name].embedding_size, settings.storage_dtype or torch.float32
        rows, values, batch_index, flags = gather_rows(
            torch.cat([rows for rows, _ in parts] or [torch.empty(0, dtype=torch.long)]),
            torch.cat([values for _, values in parts] or [torch.empty(0, width, dtype=dtype)]),
            torch.tensor([index for index, _ in finite[name]], dtype=torch.long),
            torch.stack([flag for _, flag in finite[name]]).cpu()
            if finite[name]
            else torch.ones(0, dtype=torch.bool),
        )
        _check_finite(name, split, list(zip(batch_index.tolist(), flags, strict=True)))
        tables[name] = values.new_empty((row_maps[name].size, values.shape[1]))
        tables[name][rows.to(values.device)] = values
    digest.update(f"|{type(loader).__qualname__}".encode())  # the sample count: 16 bytes each
    meta = None
    if any(any(items) for _, items in meta_chunks):  # one merged meta dict per object id
        meta = [{}] * (max(int(ids.max()) for ids, _ in meta_chunks) + 1)
        for ids, items in meta_chunks:
            for object_id, item in zip(ids.tolist(), items, strict=True):
                meta[object_id] = item
    return SplitFill(
        row_maps=row_maps,
        tables=tables,
        fingerprint=digest.hexdigest() if fingerprint else "",
        targets=type(loader).collate_labels(labels) if full else None,
        meta=meta,
    )


def _check_finite(name: str, split: str, flags: list[tuple[int, Tensor]]) -> None:
    """ValueError naming the first fill batch whose output held NaN or infinite values."""
    bad = [index for index, flag in flags if not bool(flag)]
    if bad:
        raise ValueError(
            f"Encoder '{name}' gave NaN or infinite embeddings in {split} fill batch "
            f"{min(bad)}; check the encoder and its inputs before caching them"
        )


def _ragged(parts: list[tuple[Tensor, list[Tensor]]], size: int) -> RaggedRows:
    """Per-object values of different lengths, from the fill's chunks, concatenated in row order."""
    rows = torch.cat([rows for rows, _ in parts])
    objects = [values for _, chunk in parts for values in chunk]
    order = torch.argsort(rows).tolist()
    if len(order) != size:
        raise RuntimeError(f"The fill computed {len(order)} of {size} rows")
    offsets = torch.zeros(size + 1, dtype=torch.long)
    offsets[1:] = torch.cumsum(torch.tensor([len(objects[i]) for i in order]), 0)
    return RaggedRows(torch.cat([objects[i] for i in order]), offsets.to(objects[0].device))


def _length(sized: Any) -> int | None:
    try:
        return len(sized)
    except (TypeError, NotImplementedError):
        return None
