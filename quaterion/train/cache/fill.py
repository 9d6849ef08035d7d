"""The fill pass: one inference run of the frozen encoders over a split, in large batches.

Loader workers do the per-object work (`FillCollator`: pre-collate, each encoder's collate,
cache keys, merged meta, label views, sample digests); the main process assigns rows
(`RowMap`) and runs the encoders. The same pass fingerprints the data, so a split is read once
when the cache is (re)built, and once without encoding when a stored cache is checked.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import numbers
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset

from quaterion.dataset.similarity_data_loader import SimilarityDataLoader
from quaterion.dataset.train_collator import TrainCollator, pre_collate_fn_of
from quaterion.train.cache.fingerprint import (
    DIGEST_SIZE,
    callable_fingerprint,
    dataclass_field_names,
    encoder_fingerprint,
    sample_digest,
)
from quaterion.train.cache.in_memory_cache_encoder import InMemoryCacheEncoder
from quaterion.train.cache.store import CacheStore, StoredEntry
from quaterion_models.utils.progress import track
from quaterion_models.utils.tensors import move_to_device

logger = logging.getLogger(__name__)


def label_view(sample: Any) -> Any:
    """`sample` without its objects (non-scalar dataclass fields set to None): what
    `collate_labels` needs, cheap to send back from a loader worker."""
    names = dataclass_field_names(type(sample))
    heavy = [name for name in names or () if not _is_scalar(getattr(sample, name))]
    if not heavy:
        return sample
    if hasattr(sample, "__dict__"):  # a shallow copy without copy.copy's generic machinery
        view = object.__new__(type(sample))
        view.__dict__.update(sample.__dict__)
        view.__dict__.update(dict.fromkeys(heavy))
        return view
    view = copy.copy(sample)
    for name in heavy:
        object.__setattr__(view, name, None)
    return view


def _is_scalar(value: Any) -> bool:
    if isinstance(value, torch.Tensor):  # first: an ABC check on a tensor costs microseconds
        return value.dim() == 0
    if value is None or isinstance(value, (int, float, str, bytes)):
        return True
    return isinstance(value, numbers.Number)  # numpy scalars and other registered numbers


class FillBatch(NamedTuple):
    """What a loader worker returns for one batch of the fill pass."""

    ids: Tensor  # [n_objects] object ids (CONTRACTS.md)
    num_samples: int
    features: dict[str, Any]  # {"data": encoder -> collated objects, "meta": merged or []}
    keys: dict[str, list[Hashable]]  # encoder -> cache key per object (key extractors only)
    object_digests: list[bytes] | None  # per object, with key extractors (to catch key clashes)
    labels: list[Any] | None  # label views of the samples (full cache)
    digests: bytes  # DIGEST_SIZE bytes per sample (empty: data not fingerprinted)


class FillCollator(TrainCollator):
    """The fill pass's collator (picklable, runs in the loader workers): the encoders being
    filled collate, every cached encoder's meta is merged (full cache only), plus the cache
    keys, label views and sample digests."""

    def __init__(self, pre_collate_fn: Callable, encoder_collates: dict, meta_extractors: dict,
                 key_extractors: dict[str, Callable], labels: bool, digests: bool):  # fmt: skip
        super().__init__(pre_collate_fn, encoder_collates, meta_extractors)
        self.key_extractors, self.labels, self.digests = key_extractors, labels, digests

    def __call__(self, batch: list[tuple[int, Any]]) -> FillBatch:
        ids, objects, _ = self.pre_collate_fn(batch)
        samples = [sample for _, sample in batch]
        return FillBatch(
            ids=torch.as_tensor(ids, dtype=torch.long),
            num_samples=len(samples),
            features=self.collate_objects(ids, objects),
            keys={name: list(map(key, objects)) for name, key in self.key_extractors.items()},
            object_digests=list(map(sample_digest, objects)) if self.key_extractors else None,
            labels=list(map(label_view, samples)) if self.labels else None,
            digests=b"".join(map(sample_digest, samples)) if self.digests else b"",
        )


class RowMap:
    """Rows of a split's objects in a cache table, in order of first appearance: one per
    object id, or one per cache key (`encoder` has a key extractor), which duplicates share.
    A key given to two different objects is an error: one would get the other's embedding."""

    def __init__(self, encoder: str | None = None):
        self.encoder, self.size = encoder, 0
        self._rows: dict[Hashable, int] = {}
        self._digests: dict[Hashable, bytes] = {}
        self._ids: list[Tensor] = []
        self._assigned: list[Tensor] = []

    def assign(self, batch: FillBatch) -> Tensor:
        """Give the batch's objects their rows; returns which objects got a new row [B]."""
        if self.encoder is None:
            rows = torch.arange(self.size, self.size + len(batch.ids))
            fresh = torch.ones(len(rows), dtype=torch.bool)
        else:
            keys, digests = batch.keys[self.encoder], batch.object_digests
            rows, fresh = (
                torch.empty(len(keys), dtype=torch.long),
                torch.zeros(len(keys), dtype=torch.bool),
            )
            for position, (key, digest) in enumerate(zip(keys, digests, strict=True)):
                try:
                    row = self._rows.get(key)
                except TypeError:
                    raise TypeError(
                        f"The key extractor of encoder '{self.encoder}' returned an unhashable "
                        f"{type(key).__name__}; return a str, int or tuple"
                    ) from None
                if row is None:
                    row = self._rows[key] = len(self._rows)
                    self._digests[key], fresh[position] = digest, True
                elif self._digests[key] != digest:
                    raise ValueError(
                        f"The key extractor of encoder '{self.encoder}' gives the same key {key!r} "
                        "to different objects; a key must identify its object (equal objects may "
                        "share a key)"
                    )
                rows[position] = row
        self._ids.append(batch.ids)
        self._assigned.append(rows)
        self.size += int(fresh.sum())
        return fresh

    def tensor(self) -> Tensor:
        """Object id -> row [max id + 1] (-1 where no object has that id)."""
        ids, rows = torch.cat(self._ids), torch.cat(self._assigned)
        row_map = torch.full((int(ids.max()) + 1,), -1, dtype=torch.long)
        row_map[ids] = rows
        return row_map


@dataclass
class FillSettings:
    """How the fill pass runs."""

    device: torch.device  # where the encoders run
    batch_size: int | None  # None: the source loader's batch size
    num_workers: int | None  # None: the source loader's num_workers
    storage_dtype: torch.dtype | None  # None: as the encoders give them
    progress: bool = True


@dataclass
class SplitFill:
    """What one pass over a split learned."""

    row_maps: dict[str, RowMap]  # cached encoder -> its row map (encoders may share one)
    tables: dict[str, Tensor]  # filled encoder -> rows [n, D], on its storage device
    fingerprint: str | None  # of the data (every sample, loader class, sample count); or None
    targets: dict[str, Tensor] | None  # collate_labels of every sample, in order (full cache)
    meta: list[dict] | None  # merged meta per object id (full cache); None when all empty


def fill_split(
    loader: SimilarityDataLoader,
    split: str,
    encoders: dict[str, InMemoryCacheEncoder],
    key_extractors: dict[str, Callable[[Any], Hashable]],
    full: bool,
    settings: FillSettings,
    store: CacheStore | None = None,
    write: bool = False,
) -> SplitFill:
    """Fill `encoders`' rows of `split`: stored rows are loaded when encoder and data
    fingerprints match and the file checks out; the rest are encoded (and stored if `write`)."""
    fingerprints = {  # no weights are hashed without a store
        name: encoder_fingerprint(encoder.wrapped_encoder) + f"|{settings.storage_dtype}"
        + (f"|key:{callable_fingerprint(key_extractors[name])}" if name in key_extractors else "")
        for name, encoder in (encoders.items() if store is not None else ())
    }  # fmt: skip
    entries = {
        name: entry
        for name, fingerprint in fingerprints.items()
        if (entry := store.entry(name, split, fingerprint)) is not None
    }
    encode = set(encoders) - set(entries)
    result = _pass(
        loader, split, encoders, encode, key_extractors, full, store is not None, settings
    )
    refill = {
        name for name, entry in entries.items() if not _load(store, name, split, entry, result)
    }
    if refill:
        again = _pass(loader, split, encoders, refill, key_extractors, False, False, settings)
        result.tables.update(again.tables)
    for name in encode | refill if write and store is not None else ():
        store.save(name, split, result.tables[name], fingerprints[name], result.fingerprint)
    for name, table in result.tables.items():
        result.tables[name] = table.to(encoders[name].storage_device(settings.device))
    return result


def _load(store: CacheStore, name: str, split: str, entry: StoredEntry, result: SplitFill) -> bool:
    """Put the stored rows into `result` if they fit this data; False (logged) if not."""
    where = f"cache of encoder '{name}' ({split})"
    if entry.data_fingerprint != result.fingerprint:
        logger.warning("Rebuilding the %s: the data changed since it was stored", where)
        return False
    rows = store.load(name, split, entry)
    if rows is not None and len(rows) != result.row_maps[name].size:
        logger.warning("Rebuilding the %s: %d rows stored, %d expected", where, len(rows),
                       result.row_maps[name].size)  # fmt: skip
        rows = None
    if rows is not None:
        result.tables[name] = rows
        logger.info("Reusing the %s from %s", where, store.root)
    return rows is not None


def _pass(
    loader: SimilarityDataLoader,
    split: str,
    encoders: dict[str, InMemoryCacheEncoder],
    encode: set[str],
    key_extractors: dict[str, Callable[[Any], Hashable]],
    full: bool,
    fingerprint: bool,
    settings: FillSettings,
) -> SplitFill:
    """Read `loader`'s data once: assign rows for every cached encoder, run the encoders in
    `encode`, fingerprint the data, and with `full` collect its targets and meta."""
    workers = settings.num_workers
    if workers is None or isinstance(loader.dataset, IterableDataset):
        workers = loader.num_workers  # iterable data: object ids depend on the worker count
    modules = {name: encoders[name].wrapped_encoder for name in sorted(encode)}
    collator = FillCollator(
        pre_collate_fn_of(loader.collate_fn),
        {name: module.get_collate_fn() for name, module in modules.items()},
        {name: encoder.get_meta_extractor() for name, encoder in encoders.items()} if full else {},
        key_extractors,
        labels=full,
        digests=fingerprint,
    )
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
    distinct = list({id(row_map): row_map for row_map in row_maps.values()}.values())
    chunks: dict[str, list[Tensor]] = {name: [] for name in modules}
    finite: dict[str, list[Tensor]] = {name: [] for name in modules}  # checked once, at the end
    digest = hashlib.blake2b(digest_size=DIGEST_SIZE)
    labels, meta_chunks, num_samples = [], [], 0
    storage = {name: encoders[name].storage_device(settings.device) for name in modules}
    modes = {name: module.training for name, module in modules.items()}
    try:
        for module in modules.values():
            module.to(settings.device).eval()
        for batch in track(
            fill_loader, _length(fill_loader), f"Caching {split}", settings.progress
        ):
            digest.update(batch.digests)
            labels.extend(batch.labels or ())
            num_samples += batch.num_samples
            if full:
                meta_chunks.append((batch.ids, batch.features["meta"]))
            fresh = {id(row_map): row_map.assign(batch) for row_map in distinct}
            for name, module in modules.items():
                with torch.inference_mode():
                    inputs = move_to_device(batch.features["data"][name], settings.device)
                    embeddings = module(inputs)
                new = fresh[id(row_maps[name])]
                if not bool(new.all()):
                    embeddings = embeddings[new.to(embeddings.device)]
                finite[name].append(torch.isfinite(embeddings).all())
                dtype = settings.storage_dtype or embeddings.dtype
                chunks[name].append(embeddings.to(storage[name], dtype))
    finally:
        for name, module in modules.items():
            module.train(modes[name])
    if num_samples == 0:
        raise ValueError(
            f"The {split} loader yielded no samples; pass a dataset with at least one sample"
        )
    for name, flags in finite.items():
        if not bool(torch.stack(flags).all()):
            first = int((~torch.stack(flags)).nonzero()[0])
            raise ValueError(
                f"Encoder '{name}' gave NaN or infinite embeddings in {split} fill batch {first}; "
                "check the encoder and its inputs before caching them"
            )
    digest.update(f"|{type(loader).__qualname__}|{num_samples}".encode())
    meta: list[dict] = []
    if any(any(items) for _, items in meta_chunks):  # one merged meta dict per object id
        meta = [{}] * (max(int(ids.max()) for ids, _ in meta_chunks) + 1)
        for ids, items in meta_chunks:
            for object_id, item in zip(ids.tolist(), items, strict=True):
                meta[object_id] = item
    return SplitFill(
        row_maps=row_maps,
        tables={name: torch.cat(parts) for name, parts in chunks.items()},
        fingerprint=digest.hexdigest() if fingerprint else None,
        targets=type(loader).collate_labels(labels) if full else None,
        meta=meta or None,
    )


def _length(sized: Any) -> int | None:
    try:
        return len(sized)
    except (TypeError, NotImplementedError):
        return None
