"""Cache set-up for TrainableModel: plan, fill (or load) the cache, hand back the fit loaders."""

from __future__ import annotations

import copy
import logging
import warnings
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import torch
from torch.utils.data import IterableDataset

from quaterion.dataset.full_cache_loader import full_cache_loader
from quaterion.dataset.similarity_data_loader import SimilarityDataLoader
from quaterion.dataset.train_collator import pre_collate_fn_of
from quaterion.train.cache.cache_config import CacheConfig, CacheType
from quaterion.train.cache.cache_encoder import CacheEncoder
from quaterion.train.cache.cache_train_collator import CacheTrainCollator
from quaterion.train.cache.fill import fill_split
from quaterion.train.cache.in_memory_cache_encoder import InMemoryCacheEncoder
from quaterion.train.cache.store import CacheStore
from quaterion_models.encoders import Encoder

logger = logging.getLogger(__name__)


class _Plan(NamedTuple):
    cache_types: dict[str, CacheType]  # cached encoder -> where its rows live
    key_extractors: dict[str, Callable]  # cached encoder -> its key extractor, if it has one
    full: bool  # every encoder cached and every loader indexable: batches are indices


def _plan(encoders: dict[str, Encoder], config: CacheConfig, loaders: Iterable) -> _Plan | None:
    """Which encoders cache where, how, and whether all do; None: none does. Checks `config`."""
    if config.cache_type is None and not config.mapping:
        raise ValueError(
            "If cache is configured, cache_type or mapping have to be set: got "
            "CacheConfig(cache_type=None, mapping={}); e.g. CacheConfig(CacheType.AUTO)"
        )
    if unknown := sorted(set(config.mapping) - set(encoders)):
        warnings.warn(  # the original ignored such keys, and code written for it relies on that
            f"CacheConfig.mapping names unknown encoders {unknown}, which are ignored; the "
            f"model's encoders are {sorted(encoders)}",
            stacklevel=3,
        )
    types = {name: _cache_type(config, name, encoder) for name, encoder in encoders.items()}
    types = {name: kind for name, kind in types.items() if kind is not CacheType.NONE}
    extractors = config.key_extractors
    extractors = dict.fromkeys(types, extractors) if callable(extractors) else extractors
    if unknown := sorted(set(extractors) - set(encoders)):
        raise ValueError(
            f"CacheConfig.key_extractors names unknown encoders {unknown}; the model's "
            f"encoders are {sorted(encoders)}"
        )
    for name in sorted(set(extractors) - set(types)):
        logger.info("Key extractor of encoder '%s' ignored: the encoder is not cached", name)
    full = len(types) == len(encoders) and all(map(_indexable, loaders))
    keys = {name: extractor for name, extractor in extractors.items() if name in types}
    return _Plan(types, keys, full) if types else None


def _cache_type(config: CacheConfig, name: str, encoder: Encoder) -> CacheType:
    """Where encoder `name` caches (NONE: it does not); ValueError if it cannot."""
    value = config.mapping.get(name, config.cache_type)
    try:
        cache_type = CacheType(value) if value is not None else CacheType.NONE
    except ValueError:
        raise ValueError(
            f"Unknown cache type {value!r} for encoder '{name}'; use one of "
            f"{[cache_type.value for cache_type in CacheType]}"
        ) from None
    cacheable = not encoder.trainable or encoder.frozen_lower is not None
    if not cacheable and name in config.mapping and cache_type is not CacheType.NONE:
        raise ValueError(
            f"Can't configure cache for encoder '{name}': it is trainable, and only frozen "
            "encoders can be cached; remove it from CacheConfig.mapping"
        )
    if cache_type is CacheType.GPU and not torch.cuda.is_available():
        raise ValueError(
            f"CacheType.GPU was chosen for encoder '{name}', but CUDA is not available; use "
            "CacheType.CPU or CacheType.AUTO (the trainer's device)"
        )
    return cache_type if cacheable else CacheType.NONE


def _indexable(loader: SimilarityDataLoader) -> bool:
    """Whether batches of this loader can be built from pre-collated targets by indexing."""
    kind = type(loader)
    return (
        not isinstance(loader.dataset, IterableDataset)
        and pre_collate_fn_of(loader.collate_fn) == kind.pre_collate_fn
        and kind.index_targets.__func__ is not SimilarityDataLoader.index_targets.__func__
    )


class CacheMixin:
    """Adds `setup_cache` / `unwrap_cache` to TrainableModel (provides `model`, `cache_config`)."""

    cache_config: CacheConfig

    def setup_cache(
        self, trainer: Any, train_dataloader: Any, val_dataloader: Any | None
    ) -> tuple[Any, Any | None]:
        """Fill the cache of the frozen encoders (or load it from `save_dir`) and return the
        loaders `trainer.fit` should iterate: full-cache loaders when every encoder is cached,
        else copies of the given ones whose collator hands cached encoders their rows (the given
        loaders when nothing is cached; they are never changed). Raises ValueError for a bad
        configuration.

        Args:
            trainer: the Lightning trainer (its device and rank), or None.
            train_dataloader: the training loader.
            val_dataloader: the validation loader, or None.
        """
        self.unwrap_cache()
        encoders: dict[str, Encoder] = self.model.encoders
        loaders = {"train": train_dataloader, "val": val_dataloader}
        loaders = {split: loader for split, loader in loaders.items() if loader is not None}
        config = self.cache_config
        plan = _plan(encoders, config, loaders.values())
        if plan is None:
            return train_dataloader, val_dataloader
        main_process = trainer is None or trainer.is_global_zero  # writes save_dir under DDP
        store = CacheStore(config.save_dir) if config.save_dir else None
        if store is not None and main_process:
            store.ensure_writable()
        strategy = getattr(trainer, "strategy", None)
        device = strategy.root_device if strategy is not None else torch.device("cpu")
        progress = main_process and getattr(trainer, "progress_bar_callback", True) is not None
        cached = {name: InMemoryCacheEncoder(encoders[name], kind)
                  for name, kind in plan.cache_types.items()}  # fmt: skip
        fit_loaders = {}
        for split, loader in loaders.items():
            fill = fill_split(loader, split, cached, plan, config, device, store, main_process,
                              progress)  # fmt: skip
            row_maps = {
                name: encoder.add_split(split, fill.tables[name], fill.row_maps[name].tensor())
                for name, encoder in cached.items()
            }
            if plan.full:
                fit_loaders[split] = full_cache_loader(loader, fill.targets, row_maps, fill.meta)
                continue
            fit_loaders[split] = copy.copy(loader)
            fit_loaders[split]._iterator = None  # the given loader's workers hold its collator
            fit_loaders[split].collate_fn = CacheTrainCollator.for_encoders(
                loader.collate_fn, {**encoders, **cached}, row_maps=row_maps
            )
        encoders.update(cached)
        return fit_loaders["train"], fit_loaders.get("val")

    def unwrap_cache(self) -> None:
        """Put the original encoders back in place of their cache wrappers."""
        encoders = self.model.encoders
        for name, encoder in list(encoders.items()):
            if isinstance(encoder, CacheEncoder):
                encoders[name] = encoder.wrapped_encoder
