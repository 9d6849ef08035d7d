"""Cross-Batch Memory: compare each batch against a memory of recent embeddings."""

from quaterion.train.xbm.xbm_config import XbmConfig, XbmDevice

__all__ = ["XbmConfig", "XbmDevice"]
