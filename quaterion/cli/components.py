"""Heads, losses and encoders that a config can name, and how to build them from a config.

Registries map a class name to its import path; a class is imported only when it is built, so
naming an unknown component is reported without importing anything heavy.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from quaterion.cli.config import ComponentConfig, ConfigError, EncoderConfig

#: head class name -> module that defines it (all take `input_embedding_size`)
HEADS = {
    name: "quaterion_models.heads"
    for name in (
        "EmptyHead",
        "GatedHead",
        "LinearHead",
        "SkipConnectionHead",
        "SoftmaxEmbeddingsHead",
        "StackedProjectionHead",
        "WideningHead",
    )
}

#: loss class name -> module; GROUP_LOSSES take groups, the others pairs
GROUP_LOSSES = (
    "ArcFaceLoss",
    "CenterLoss",
    "CircleLoss",
    "CosFaceLoss",
    "FastAPLoss",
    "OnlineContrastiveLoss",
    "SoftmaxLoss",
    "TripletLoss",
)
PAIR_LOSSES = ("ContrastiveLoss", "MultipleNegativesRankingLoss")
LOSSES = {name: "quaterion.loss" for name in GROUP_LOSSES + PAIR_LOSSES}


def _registered(registry: dict[str, str], name: str, where: str) -> type:
    """The class `name` of `registry`; ConfigError listing the valid names otherwise."""
    if name not in registry:
        raise ConfigError(
            f"config field '{where}.name' is {name!r}, which is not known; valid values: "
            f"{', '.join(registry)}"
        )
    return getattr(importlib.import_module(registry[name]), name)


def check_component(registry: dict[str, str], config: ComponentConfig, where: str) -> None:
    """Raise ConfigError when `config` names an unknown class or an argument it does not take."""
    cls = _registered(registry, config.name, where)
    parameters = inspect.signature(cls).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    unknown = [key for key in config.kwargs if key not in parameters]
    if unknown:
        valid = [name for name, p in parameters.items() if p.kind is not p.VAR_POSITIONAL]
        raise ConfigError(
            f"config field '{where}.kwargs' has unknown argument(s) {unknown} for "
            f"{cls.__name__}; valid: {', '.join(valid)}"
        )


def _construct(cls: type, kwargs: dict[str, Any], where: str, **derived: Any) -> Any:
    """`cls(**derived, **kwargs)`, where `derived` holds values the CLI works out (sizes, group
    counts), passed only when the constructor takes them; errors name the config field."""
    parameters = inspect.signature(cls).parameters
    given = {key: value for key, value in derived.items() if key in parameters}
    try:
        return cls(**{**given, **kwargs})
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"config field '{where}' could not build {cls.__name__}: {exc}") from exc


def build_head(config: ComponentConfig, input_embedding_size: int) -> Any:
    """The head named by `config` over encoder outputs of width `input_embedding_size`."""
    cls = _registered(HEADS, config.name, "head")
    return _construct(cls, config.kwargs, "head", input_embedding_size=input_embedding_size)


def build_loss(config: ComponentConfig, embedding_size: int, num_groups: int) -> Any:
    """The loss named by `config`; class-based losses get `embedding_size` and `num_groups`."""
    cls = _registered(LOSSES, config.name, "loss")
    return _construct(
        cls, config.kwargs, "loss", embedding_size=embedding_size, num_groups=num_groups
    )


def loss_kind(name: str) -> str:
    """Which data a registered loss trains on: "groups" or "pairs"."""
    return "groups" if name in GROUP_LOSSES else "pairs"


def build_encoder(config: EncoderConfig) -> Any:
    """The frozen encoder named by `config` (optional packages are imported here)."""
    if config.name == "minilm":
        from quaterion_models.encoders.extras import SentenceTransformerEncoder, minilm_path

        return SentenceTransformerEncoder(minilm_path())
    if config.name == "hf":
        from quaterion_models.encoders.extras import HuggingFaceEncoder

        return HuggingFaceEncoder(model_path=config.path)
    if config.name == "efficientnet":
        from quaterion_models.encoders.extras import EfficientNetLite0Encoder

        return EfficientNetLite0Encoder(image_size=config.image_size)
    raise ConfigError(f"config field 'encoder.name' is {config.name!r}, which is not known")
