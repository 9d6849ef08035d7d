"""Embedding cache for frozen encoders: configuration, cached encoders, store, fill, fingerprint."""

from quaterion.train.cache.cache_config import CacheConfig, CacheType, KeyExtractorType
from quaterion.train.cache.cache_encoder import CacheEncoder
from quaterion.train.cache.in_memory_cache_encoder import InMemoryCacheEncoder

__all__ = ["CacheConfig", "CacheEncoder", "CacheType", "InMemoryCacheEncoder", "KeyExtractorType"]
