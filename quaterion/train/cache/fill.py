"""The fill pass: one inference run of the frozen encoders over a split, in large batches.

The loader workers do the per-object work (pre-collate, each encoder's collate, cache keys,
meta, label views and the data digest); the main process only assigns rows and runs the
encoders. The same pass fingerprints the data, so a split is read once when the cache has to
be (re)built, and once (without encoding) when a stored cache is checked.
"""

from __future__ import annotations

import copy
import hashlib
import math
import numbers
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset

from quaterion.dataset.similarity_data_loader import SimilarityDataLoader
from quaterion.dataset.train_collator import pre_collate_fn_of
from quaterion.train.cache.fingerprint import DIGEST_SIZE, dataclass_field_names, sample_digest
from quaterion.train.cache.in_memory_cache_encoder import InMemoryCacheEncoder
from quaterion_models.types import CollateFnType, MetaExtractorFnType
from quaterion_models.utils.progress import track


def label_view(sample: Any) -> Any:
    """`sample` without its objects (non-scalar dataclass fields set to None): what
    `collate_labels` needs, cheap to send back from a loader worker."""
    names = dataclass_field_names(type(sample))
    if names is None:
        return sample
    heavy = [name for name in names if not _is_scalar(getattr(sample, name))]
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


class ScanBatch(NamedTuple):
    """What a loader worker returns for one batch of the fill pass."""

    ids: Tensor  # [n_objects] object ids (CONTRACTS.md)
    num_samples: int
    digests: bytes  # DIGEST_SIZE bytes per sample, in order (empty: data not fingerprinted)
    labels: list[Any] | None  # label views of the samples
    keys: dict[str, list[Hashable]]  # encoder -> cache key per object (custom keys only)
    object_digests: list[bytes] | None  # per object, with custom keys (to catch key clashes)
    meta: dict[str, list[dict]] | None  # encoder -> meta per object
    features: dict[str, Any]  # encoder -> collated objects (encoders being filled)


@dataclass
class ScanCollator:
    """Picklable collate function of the fill loader (runs in the workers)."""

    pre_collate_fn: Callable
    encoder_collates: dict[str, CollateFnType]
    key_extractors: dict[str, Callable[[Any], Hashable]]
    meta_extractors: dict[str, MetaExtractorFnType] | None
    keep_labels: bool
    fingerprint: bool

    def __call__(self, batch: list[tuple[int, Any]]) -> ScanBatch:
        ids, objects, _ = self.pre_collate_fn(batch)
        samples = [sample for _, sample in batch]
        return ScanBatch(
            ids=torch.as_tensor(ids, dtype=torch.long),
            num_samples=len(samples),
            digests=b"".join(map(sample_digest, samples)) if self.fingerprint else b"",
            labels=[label_view(sample) for sample in samples] if self.keep_labels else None,
            keys={name: [key(obj) for obj in objects] for name, key in self.key_extractors.items()},
            object_digests=list(map(sample_digest, objects)) if self.key_extractors else None,
            meta=None
            if self.meta_extractors is None
            else {name: extract(objects) for name, extract in self.meta_extractors.items()},
            features={name: collate(objects) for name, collate in self.encoder_collates.items()},
        )


@dataclass
class SplitScan:
    """What one pass over a split learned."""

    data_fingerprint: str | None  # None unless FillSettings.fingerprint_data
    num_rows: dict[str, int]  # encoder -> rows this split occupies
    key_rows: dict[str, dict[Hashable, int]] = field(default_factory=dict)  # custom keys -> row
    targets: dict[str, Tensor] | None = None  # collate_labels of every sample, in order
    meta: list[dict] | None = None  # merged meta per object id; None when all empty


@dataclass
class FillSettings:
    """How the fill pass runs."""

    device: torch.device  # where the encoders run
    batch_size: int | None  # None: the source loader's batch size
    num_workers: int | None  # None: the source loader's num_workers
    fingerprint_data: bool  # digest every sample (needed only to check a stored cache)
    progress: bool = True


def scan_split(
    loader: SimilarityDataLoader,
    split: str,
    encoders: dict[str, InMemoryCacheEncoder],
    fill: set[str],
    offsets: dict[str, int],
    key_extractors: dict[str, Callable[[Any], Hashable]],
    full: bool,
    settings: FillSettings,
) -> SplitScan:
    """Read `loader`'s data once: fingerprint it, encode it for the encoders in `fill` (rows of
    this split start at `offsets[name]`), and with `full` collect its targets and meta."""
    workers = settings.num_workers
    if workers is None or isinstance(loader.dataset, IterableDataset):
        workers = loader.num_workers  # iterable data: object ids depend on the worker count
    collator = ScanCollator(
        pre_collate_fn=pre_collate_fn_of(loader.collate_fn),
        encoder_collates={
            name: encoders[name].wrapped_encoder.get_collate_fn() for name in sorted(fill)
        },
        key_extractors=key_extractors,
        meta_extractors={
            name: encoder.wrapped_encoder.get_meta_extractor() for name, encoder in encoders.items()
        }
        if full
        else None,
        keep_labels=full,
        fingerprint=settings.fingerprint_data,
    )
    scan_loader = DataLoader(
        loader.dataset,
        batch_size=settings.batch_size or loader.batch_size or 1,
        shuffle=False,
        num_workers=workers,
        collate_fn=collator,
        pin_memory=settings.device.type == "cuda",
        worker_init_fn=loader.worker_init_fn,
        multiprocessing_context=loader.multiprocessing_context if workers > 0 else None,
    )
    modules = [encoders[name].wrapped_encoder.to(settings.device) for name in sorted(fill)]
    with _eval_mode(modules):
        return _run_scan(
            scan_loader, loader, split, encoders, fill, offsets, key_extractors, full, settings
        )


@contextmanager
def _eval_mode(modules: list[torch.nn.Module]) -> Iterator[None]:
    """Run the encoders in eval mode, then give them back their train/eval mode."""
    modes = [module.training for module in modules]
    for module in modules:
        module.eval()
    try:
        yield
    finally:
        for module, mode in zip(modules, modes, strict=True):
            module.train(mode)


def _run_scan(
    scan_loader: DataLoader,
    loader: SimilarityDataLoader,
    split: str,
    encoders: dict[str, InMemoryCacheEncoder],
    fill: set[str],
    offsets: dict[str, int],
    key_extractors: dict[str, Callable[[Any], Hashable]],
    full: bool,
    settings: FillSettings,
) -> SplitScan:
    digest = hashlib.blake2b(digest_size=DIGEST_SIZE)
    key_rows = {name: KeyRows(name) for name in key_extractors}
    num_rows = dict.fromkeys(encoders, 0)
    num_samples = 0
    size_hint = 0  # rows this split will need, estimated from the first batch
    labels: list[Any] = []
    meta_chunks: list[tuple[Tensor, dict[str, list[dict]]]] = []
    finite: dict[str, list[Tensor]] = {name: [] for name in fill}  # per batch, checked at the end
    batches = track(
        scan_loader,
        total=_length(scan_loader),
        description=f"Caching {split}",
        enabled=settings.progress,
    )
    for batch in batches:
        digest.update(batch.digests)
        if batch.labels is not None:
            labels.extend(batch.labels)
        if batch.meta is not None and any(any(items) for items in batch.meta.values()):
            meta_chunks.append((batch.ids, batch.meta))
        if num_samples == 0 and _length(loader.dataset) is not None:
            size_hint = math.ceil(len(loader.dataset) * len(batch.ids) / max(batch.num_samples, 1))
        num_samples += batch.num_samples
        for name, encoder in encoders.items():
            if name in key_rows:
                local = key_rows[name].rows_of(batch.keys[name], batch.object_digests)
            else:
                local = batch.ids
            if len(local):
                num_rows[name] = max(num_rows[name], int(local.max()) + 1)
            if name in fill:
                embeddings = encoder.fill_cache(
                    local + offsets[name],
                    batch.features[name],
                    settings.device,
                    capacity_hint=offsets[name] + size_hint,
                )
                finite[name].append(torch.isfinite(embeddings).all())
    if num_samples == 0:
        raise ValueError(
            f"The {split} loader yielded no samples; pass a dataset with at least one sample"
        )
    _check_finite(finite, split)
    digest.update(f"|{type(loader).__qualname__}|{num_samples}".encode())
    return SplitScan(
        data_fingerprint=digest.hexdigest() if settings.fingerprint_data else None,
        num_rows=num_rows,
        key_rows={name: table.rows for name, table in key_rows.items()},
        targets=type(loader).collate_labels(labels) if full else None,
        meta=_merge_meta_rows(meta_chunks, num_rows) if meta_chunks else None,
    )


def _check_finite(finite: dict[str, list[Tensor]], split: str) -> None:
    """Refuse to keep NaN or infinite embeddings (one device sync per split, not per batch)."""
    for name, flags in finite.items():
        if flags and not bool(torch.stack(flags).all()):
            first = int((~torch.stack(flags)).nonzero()[0])
            raise ValueError(
                f"Encoder '{name}' gave NaN or infinite embeddings in {split} fill batch {first}; "
                "check the encoder and its inputs before caching them"
            )


def _length(sized: Any) -> int | None:
    try:
        return len(sized)
    except (TypeError, NotImplementedError):
        return None


class KeyRows:
    """Rows of one encoder's cache keys in a split: a new key gets the next row, a repeated key
    (a duplicate object) its first row. A key given to a different object is an error: it would
    silently hand that object another object's embedding."""

    def __init__(self, encoder: str):
        self.encoder = encoder
        self.rows: dict[Hashable, int] = {}
        self._digests: dict[Hashable, bytes] = {}  # digest of the first object of each key

    def rows_of(self, keys: list[Hashable], digests: list[bytes]) -> Tensor:
        """Rows [B] of `keys`, whose objects have `digests`."""
        rows = []
        for key, digest in zip(keys, digests, strict=True):
            try:
                row = self.rows.get(key)
            except TypeError:
                raise TypeError(
                    f"The key extractor of encoder '{self.encoder}' returned an unhashable "
                    f"{type(key).__name__}; return a str, int or tuple"
                ) from None
            if row is None:
                row = self.rows[key] = len(self.rows)
                self._digests[key] = digest
            elif self._digests[key] != digest:
                raise ValueError(
                    f"The key extractor of encoder '{self.encoder}' gives the same key {key!r} to "
                    "different objects; a key must identify its object (equal objects may share "
                    "a key)"
                )
            rows.append(row)
        return torch.tensor(rows, dtype=torch.long)


def _merge_meta_rows(
    chunks: list[tuple[Tensor, dict[str, list[dict]]]], num_rows: dict[str, int]
) -> list[dict]:
    """One merged meta dict per object id (full cache: every encoder shares the ids)."""
    merged: list[dict] = [{} for _ in range(max(num_rows.values(), default=0))]
    for ids, meta in chunks:
        for items in meta.values():
            for object_id, item in zip(ids.tolist(), items, strict=True):
                merged[object_id].update(item)
    return merged
