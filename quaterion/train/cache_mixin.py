"""Cache set-up for TrainableModel: wrap frozen encoders, fill their cache, hand back loaders.

`setup_cache` decides per encoder whether to cache it (`CacheConfig`), fills the caches in one
inference pass per split (reusing `save_dir` when fingerprints match), and returns the loaders
`trainer.fit` should iterate:
- full cache (every encoder cached, default keys, map-style data): `FullCacheLoader`s whose
  batches are index tensors into the cached rows and the pre-collated targets;
- otherwise: copies of the given loaders whose collator hands cached encoders their rows and
  the other encoders their objects (`CacheTrainCollator`).

Under DDP every process holds all rows (each epoch's shard of indices differs); each process
fills its own cache before training, so nothing has to be exchanged. With `save_dir`, rank 0
writes the files and processes started after it (Lightning's DDP launcher starts them once
rank 0 reaches `trainer.fit`) load them instead of encoding again.
"""

from __future__ import annotations

import copy
import logging
import warnings
from collections.abc import Callable, Hashable
from typing import Any

import torch
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    IterableDataset,
    RandomSampler,
    SequentialSampler,
)

from quaterion.dataset.similarity_data_loader import SimilarityDataLoader
from quaterion.dataset.train_collator import pre_collate_fn_of
from quaterion.train.cache.builder import CacheBuilder
from quaterion.train.cache.cache_config import CacheConfig, CacheType
from quaterion.train.cache.cache_encoder import CacheEncoder
from quaterion.train.cache.cache_train_collator import CacheTrainCollator
from quaterion.train.cache.fill import FillSettings, SplitScan
from quaterion.train.cache.full_cache_loader import EpochBatches, FullCacheLoader
from quaterion.train.cache.in_memory_cache_encoder import InMemoryCacheEncoder
from quaterion.train.cache.store import CacheStore
from quaterion_models.encoders import Encoder

logger = logging.getLogger(__name__)

SPLITS = ("train", "val")


class CacheMixin:
    """Adds `setup_cache` / `unwrap_cache` to TrainableModel (provides `model`, `cache_config`)."""

    cache_config: CacheConfig

    def setup_cache(
        self,
        trainer: Any,
        train_dataloader: SimilarityDataLoader,
        val_dataloader: SimilarityDataLoader | None,
    ) -> tuple[Any, Any | None]:
        """Cache frozen encoders' embeddings; return the loaders `trainer.fit` should iterate.

        The given loaders come back unchanged when nothing is cached. Raises ValueError for a
        trainable encoder named in `mapping`, an unknown `key_extractors` name, or
        `CacheType.GPU` without CUDA; warns about `mapping` keys naming no encoder.
        """
        self.unwrap_cache()
        encoders: dict[str, Encoder] = self.model.encoders
        config = self.cache_config
        cache_types = resolve_cache_types(encoders, config)
        if not cache_types:
            return train_dataloader, val_dataloader
        cached = {
            name: InMemoryCacheEncoder(encoders[name], cache_type)
            for name, cache_type in cache_types.items()
        }
        key_extractors = resolve_key_extractors(config, encoders, cached)
        loaders = dict(zip(SPLITS, (train_dataloader, val_dataloader), strict=True))
        loaders = {split: loader for split, loader in loaders.items() if loader is not None}
        full = len(cached) == len(encoders) and not key_extractors
        full = full and all(_indexable(loader) for loader in loaders.values())
        store = CacheStore(config.save_dir) if config.save_dir else None
        main_process = trainer is None or trainer.is_global_zero
        if store is not None and main_process:
            store.ensure_writable()
        settings = FillSettings(
            device=_device_of(trainer),
            batch_size=config.batch_size,
            num_workers=config.num_workers,
            fingerprint_data=store is not None,
            progress=main_process and getattr(trainer, "progress_bar_callback", True) is not None,
        )
        builder = CacheBuilder(cached, key_extractors, settings, store, write=main_process)
        offsets = dict.fromkeys(cached, 0)
        split_offsets, scans = {}, {}
        for split, loader in loaders.items():
            split_offsets[split] = dict(offsets)
            scans[split] = builder.build(split, loader, offsets, full)
            offsets = {name: offsets[name] + scans[split].num_rows[name] for name in cached}
        for encoder in cached.values():
            encoder.finish_fill()
        encoders.update(cached)
        fit_loaders = {
            split: _full_cache_loader(loader, scans[split], split_offsets[split])
            if full
            else _collating_loader(
                loader, scans[split], split_offsets[split], encoders, key_extractors
            )
            for split, loader in loaders.items()
        }
        return fit_loaders["train"], fit_loaders.get("val")

    def unwrap_cache(self) -> None:
        """Put the original encoders back in place of their cache wrappers."""
        encoders = self.model.encoders
        for name, encoder in list(encoders.items()):
            if isinstance(encoder, CacheEncoder):
                encoders[name] = encoder.wrapped_encoder


def resolve_cache_types(
    encoders: dict[str, Encoder], config: CacheConfig | None
) -> dict[str, CacheType]:
    """Encoder name -> where its cache lives, for every encoder that is cached."""
    if config is None:
        return {}
    if config.cache_type is None and not config.mapping:
        raise ValueError(
            "If cache is configured, cache_type or mapping have to be set: got "
            "CacheConfig(cache_type=None, mapping={}); e.g. CacheConfig(CacheType.AUTO)"
        )
    unknown = sorted(set(config.mapping) - set(encoders))
    if unknown:  # the original ignored such keys, and code written for it relies on that
        warnings.warn(
            f"CacheConfig.mapping names unknown encoders {unknown}, which are ignored; the "
            f"model's encoders are {sorted(encoders)}",
            stacklevel=2,
        )
    types = {}
    for name, encoder in encoders.items():
        cache_type = _cache_type(config.mapping.get(name, config.cache_type), name)
        if cache_type is CacheType.NONE:
            continue
        if encoder.trainable:
            if name in config.mapping:
                raise ValueError(
                    f"Can't configure cache for encoder '{name}': it is trainable, and only "
                    "frozen encoders can be cached; remove it from CacheConfig.mapping"
                )
            continue
        if cache_type is CacheType.GPU and not torch.cuda.is_available():
            raise ValueError(
                f"CacheType.GPU was chosen for encoder '{name}', but CUDA is not available; use "
                "CacheType.CPU or CacheType.AUTO (the trainer's device)"
            )
        types[name] = cache_type
    return types


def _cache_type(value: CacheType | str | None, name: str) -> CacheType:
    if value is None:
        return CacheType.NONE
    try:
        return CacheType(value)
    except ValueError:
        raise ValueError(
            f"Unknown cache type {value!r} for encoder '{name}'; use one of "
            f"{[cache_type.value for cache_type in CacheType]}"
        ) from None


def resolve_key_extractors(
    config: CacheConfig, encoders: dict[str, Encoder], cached: dict[str, Any]
) -> dict[str, Callable[[Any], Hashable]]:
    """Encoder name -> key extractor, for the cached encoders that have one."""
    extractors = config.key_extractors
    if callable(extractors):
        return dict.fromkeys(cached, extractors)
    unknown = sorted(set(extractors) - set(encoders))
    if unknown:
        raise ValueError(
            f"CacheConfig.key_extractors names unknown encoders {unknown}; the model's encoders "
            f"are {sorted(encoders)}"
        )
    for name in sorted(set(extractors) - set(cached)):
        logger.info("Key extractor of encoder '%s' ignored: the encoder is not cached", name)
    return {name: extractor for name, extractor in extractors.items() if name in cached}


def _device_of(trainer: Any) -> torch.device:
    """Where the trainer runs (the fill runs there too); CPU without a trainer."""
    strategy = getattr(trainer, "strategy", None)
    return strategy.root_device if strategy is not None else torch.device("cpu")


def _indexable(loader: SimilarityDataLoader) -> bool:
    """Whether batches of this loader can be built from pre-collated targets by indexing."""
    loader_class = type(loader)
    return (
        not isinstance(loader.dataset, IterableDataset)
        and pre_collate_fn_of(loader.collate_fn) == loader_class.pre_collate_fn
        and loader_class.index_targets.__func__ is not SimilarityDataLoader.index_targets.__func__
    )


def _full_cache_loader(
    loader: SimilarityDataLoader, scan: SplitScan, offsets: dict[str, int]
) -> FullCacheLoader:
    num_samples = len(loader.dataset)
    return FullCacheLoader(
        loader_class=type(loader),
        targets=scan.targets,
        encoder_names=sorted(offsets),
        row_offset=next(iter(offsets.values())),  # default keys: every encoder has equal rows
        meta=scan.meta,
        batches=_epoch_batches(loader, num_samples),
    )


def _epoch_batches(loader: DataLoader, num_samples: int) -> EpochBatches:
    """The loader's batching (batch size, shuffle, drop_last, or its own batch sampler)."""
    sampler, batch_sampler = loader.sampler, loader.batch_sampler
    standard = type(batch_sampler) is BatchSampler and (
        type(sampler) is SequentialSampler
        or type(sampler) is RandomSampler
        and not sampler.replacement
        and sampler.num_samples == num_samples
    )
    if standard:
        return EpochBatches(
            num_samples,
            batch_size=loader.batch_size,
            shuffle=isinstance(sampler, RandomSampler),
            drop_last=loader.drop_last,
            generator=getattr(sampler, "generator", None),
        )
    return EpochBatches(
        num_samples,
        batch_size=getattr(batch_sampler, "batch_size", None) or 1,
        shuffle=False,
        drop_last=False,
        batch_sampler=batch_sampler,
    )


def _collating_loader(
    loader: SimilarityDataLoader,
    scan: SplitScan,
    offsets: dict[str, int],
    encoders: dict[str, Encoder],
    key_extractors: dict[str, Callable[[Any], Hashable]],
) -> SimilarityDataLoader:
    """A copy of `loader` whose collator gives cached encoders their rows."""
    collating = copy.copy(loader)
    collating._iterator = None  # persistent workers of the original hold the old collator
    collating.collate_fn = CacheTrainCollator(
        pre_collate_fn=pre_collate_fn_of(loader.collate_fn),
        encoder_collates={name: encoder.get_collate_fn() for name, encoder in encoders.items()},
        meta_extractors={name: encoder.get_meta_extractor() for name, encoder in encoders.items()},
        row_offsets=offsets,
        key_extractors=key_extractors,
        key_rows=scan.key_rows,
    )
    return collating
