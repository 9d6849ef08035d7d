"""Inference side of Quaterion: encoders, heads and the servable `SimilarityModel`.

Needs torch, numpy, safetensors and rich only; optional integrations live in
`quaterion_models.encoders.extras` and import their dependencies lazily.
"""

from quaterion_models.model import SimilarityModel

__all__ = ["SimilarityModel"]
