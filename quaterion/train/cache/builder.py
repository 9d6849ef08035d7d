"""Fills the cache encoders of one fit, split by split, reusing stored rows when they match.

Per split: every encoder whose stored manifest was written by an identical encoder is a
candidate for reuse; one pass over the split fingerprints the data and encodes the others.
A candidate whose data fingerprint matches and whose file checks out is loaded; the rest are
encoded in a second pass. Fresh rows are written back to `save_dir` (by rank 0 only).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from typing import Any

from quaterion.dataset.similarity_data_loader import SimilarityDataLoader
from quaterion.train.cache.fill import FillSettings, SplitScan, scan_split
from quaterion.train.cache.fingerprint import callable_fingerprint, encoder_fingerprint
from quaterion.train.cache.in_memory_cache_encoder import InMemoryCacheEncoder
from quaterion.train.cache.store import CacheStore, StoredEntry

logger = logging.getLogger(__name__)


class CacheBuilder:
    """Fills `encoders` (name -> cache encoder) for the splits of one fit."""

    def __init__(
        self,
        encoders: dict[str, InMemoryCacheEncoder],
        key_extractors: dict[str, Callable[[Any], Hashable]],
        settings: FillSettings,
        store: CacheStore | None,
        write: bool,
    ):
        self.encoders = encoders
        self.key_extractors = key_extractors
        self.settings = settings
        self.store = store
        self.write = write and store is not None
        # encoder fingerprints matter only for a store: no weights are hashed without one
        self.fingerprints = {
            name: self._fingerprint(name) for name in (encoders if store is not None else ())
        }

    def _fingerprint(self, name: str) -> str:
        key_extractor = self.key_extractors.get(name)
        keys = "" if key_extractor is None else f"|key:{callable_fingerprint(key_extractor)}"
        return encoder_fingerprint(self.encoders[name].wrapped_encoder) + keys

    def build(
        self, split: str, loader: SimilarityDataLoader, offsets: dict[str, int], full: bool
    ) -> SplitScan:
        """Fill (or load) the rows of `split`, which start at `offsets[name]` per encoder."""
        entries = self._stored_entries(split)
        fill = set(self.encoders) - set(entries)
        scan = self._scan(split, loader, offsets, fill, full)
        refill = {
            name
            for name, entry in entries.items()
            if not self._reuse(name, split, entry, scan, offsets[name])
        }
        if refill:
            self._scan(split, loader, offsets, refill, full=False)
        if self.write:
            for name in fill | refill:
                start = offsets[name]
                rows = self.encoders[name].rows(start, start + scan.num_rows[name])
                self.store.save(name, split, rows, self.fingerprints[name], scan.data_fingerprint)
        return scan

    def _stored_entries(self, split: str) -> dict[str, StoredEntry]:
        """Manifests of `split` written by identical encoders (candidates for reuse)."""
        if self.store is None:
            return {}
        entries = {
            name: self.store.entry(name, split, self.fingerprints[name]) for name in self.encoders
        }
        return {name: entry for name, entry in entries.items() if entry is not None}

    def _reuse(
        self, name: str, split: str, entry: StoredEntry, scan: SplitScan, offset: int
    ) -> bool:
        """Load stored rows into the encoder if they fit this data; False (logged) if not."""
        where = f"cache of encoder '{name}' ({split})"
        if entry.data_fingerprint != scan.data_fingerprint:
            logger.warning("Rebuilding the %s: the data changed since it was stored", where)
            return False
        rows = self.store.load(name, split, entry)
        if rows is None:
            return False
        encoder = self.encoders[name]
        expected = (scan.num_rows[name], encoder.embedding_size)
        if tuple(rows.shape) != expected:
            logger.warning(
                "Rebuilding the %s: stored rows are %s, expected %s",
                where,
                tuple(rows.shape),
                expected,
            )
            return False
        encoder.put_rows(offset, rows, encoder.storage_device(self.settings.device))
        logger.info("Reusing the %s from %s", where, self.store.root)
        return True

    def _scan(
        self,
        split: str,
        loader: SimilarityDataLoader,
        offsets: dict[str, int],
        fill: set[str],
        full: bool,
    ) -> SplitScan:
        return scan_split(
            loader,
            split,
            self.encoders,
            fill=fill,
            offsets=offsets,
            key_extractors=self.key_extractors,
            full=full,
            settings=self.settings,
        )
