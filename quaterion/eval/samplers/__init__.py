"""Samplers: encode an evaluation dataset and serve it to metrics."""

from quaterion.eval.samplers.base_sampler import BaseSampler

__all__ = ["BaseSampler"]
