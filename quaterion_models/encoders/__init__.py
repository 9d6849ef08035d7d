"""Encoders: turn raw records into embeddings."""

from quaterion_models.encoders.encoder import Encoder
from quaterion_models.encoders.switch_encoder import SwitchEncoder

__all__ = ["Encoder", "SwitchEncoder"]
