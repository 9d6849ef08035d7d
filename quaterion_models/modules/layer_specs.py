"""Describe common torch.nn layers as JSON and rebuild them, without pickling.

A spec is `{"module": ..., "class": ..., "kwargs": {...}}` (only the constructor arguments
that differ from their defaults); an `nn.Sequential` spec lists its `children` by name.
Weights are not part of a spec: they travel in a safetensors state dict.
Only the layers listed in `SUPPORTED_LAYERS` are accepted, both when describing and when
rebuilding, so a config file can never make the loader import arbitrary code.
"""

from __future__ import annotations

import inspect
from collections import OrderedDict
from typing import Any

import torch
from torch import nn
from torch.nn.modules import activation

from quaterion_models.modules.simple import ActivationFromFnName

SUPPORTED_LAYERS: dict[str, type[nn.Module]] = {
    f"{cls.__module__}.{cls.__qualname__}": cls
    for cls in [
        nn.Linear,
        nn.Dropout,
        nn.LayerNorm,
        nn.BatchNorm1d,
        nn.Identity,
        nn.Flatten,
        nn.Sequential,
        ActivationFromFnName,
        *(
            value
            for value in vars(activation).values()
            if isinstance(value, type)
            and issubclass(value, nn.Module)
            and value.__module__ == activation.__name__
            and value is not nn.MultiheadAttention
        ),
    ]
}

_JSON_SCALARS = (bool, int, float, str, type(None))


class UnsupportedLayerError(TypeError):
    """A layer whose constructor arguments cannot be recovered for a pickle-free save."""


def _unsupported(module: nn.Module, where: str, reason: str) -> UnsupportedLayerError:
    return UnsupportedLayerError(
        f"Cannot save layer {where} ({type(module).__qualname__}) without pickling: {reason}. "
        "Supported layers: Linear, Dropout, LayerNorm, BatchNorm1d, Identity, Flatten, "
        "nn.Sequential, ActivationFromFnName and the torch.nn activations. "
        "Build the head from those layers, or write an EncoderHead subclass (implement "
        "`transform`, `output_size` and `get_config_dict`) for custom layers."
    )


def _json_value(value: Any) -> Any:
    if isinstance(value, _JSON_SCALARS):
        return value
    if isinstance(value, (tuple, list, torch.Size)) and all(
        isinstance(item, _JSON_SCALARS) for item in value
    ):
        return list(value)
    raise TypeError(f"{value!r} is not a JSON value")


def _recover_kwargs(module: nn.Module, where: str) -> dict[str, Any]:
    """Constructor arguments read back from same-named attributes, defaults omitted."""
    kwargs = {}
    for name, parameter in inspect.signature(type(module).__init__).parameters.items():
        if name in {"self", "device", "dtype"} or parameter.kind in (
            parameter.VAR_POSITIONAL,
            parameter.VAR_KEYWORD,
        ):
            continue
        if name == "bias":  # a bool argument stored as a Parameter or None
            value: Any = getattr(module, "bias", None) is not None
        elif hasattr(module, name):
            value = getattr(module, name)
        elif parameter.default is None:  # deprecated aliases such as Hardtanh(min_value=None)
            continue
        else:
            raise _unsupported(module, where, f"argument {name!r} cannot be read back")
        try:
            value = _json_value(value)
        except TypeError as exc:
            raise _unsupported(module, where, f"argument {name!r}: {exc}") from exc
        if parameter.default is parameter.empty or value != _json_value(parameter.default):
            kwargs[name] = value
    return kwargs


def layer_to_spec(module: nn.Module, where: str = "") -> dict[str, Any]:
    """JSON description of `module`; `where` names it in errors (e.g. "_sequential.2").

    Args:
        module: a layer of a supported type.
        where: the layer's position, e.g. `"_sequential.2"`, used in errors.

    Returns:
        a JSON-serialisable dict.
    """
    cls = type(module)
    path = f"{cls.__module__}.{cls.__qualname__}"
    if SUPPORTED_LAYERS.get(path) is not cls:
        raise _unsupported(module, where, "this layer type is not supported")
    spec: dict[str, Any] = {"module": cls.__module__, "class": cls.__qualname__}
    if isinstance(module, nn.Sequential):
        spec["children"] = {
            name: layer_to_spec(child, f"{where}.{name}") for name, child in module.named_children()
        }
    else:
        spec["kwargs"] = _recover_kwargs(module, where)
    return spec


def layer_from_spec(spec: dict[str, Any]) -> nn.Module:
    """Freshly initialised layer described by `layer_to_spec` output.

    Args:
        spec: a dict written by `layer_to_spec`.

    Returns:
        the layer, with fresh weights.
    """
    try:
        path = f"{spec['module']}.{spec['class']}"
    except (KeyError, TypeError) as exc:
        raise ValueError(f"A layer spec needs 'module' and 'class' keys, got {spec!r}") from exc
    cls = SUPPORTED_LAYERS.get(path)
    if cls is None:
        raise ValueError(f"Layer type {path} is not supported by pickle-free loading")
    if cls is nn.Sequential:
        children = spec.get("children", {})
        return nn.Sequential(
            OrderedDict((name, layer_from_spec(child)) for name, child in children.items())
        )
    return cls(**spec.get("kwargs", {}))
