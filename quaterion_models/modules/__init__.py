"""Small reusable nn.Modules."""

from quaterion_models.modules.simple import ActivationFromFnName

__all__ = ["ActivationFromFnName"]
