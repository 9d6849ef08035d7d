"""The `quaterion fit` configuration schema: typed dataclasses, read from YAML, TOML or JSON.

This module holds the schema and its type checks only; `quaterion.cli.components` knows the
heads, losses and encoders a config may name, checks values against them (`validate`) and
loads a config file (`load_config`). Every error names the field (`data.kind`, `loss.kwargs`,
...), what was wrong and what is valid.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: data kinds that `quaterion fit` can train on, with what each reads
DATA_KINDS = {
    "wordnet-lexical": "WordNet noun definitions grouped by lexical category (groups)",
    "wordnet-synonyms": "WordNet synonym sets: each lemma grouped with its synonyms (groups)",
    "wordnet-definitions": "WordNet word -> definition pairs (pairs)",
    "fashion-mnist": "Fashion-MNIST images grouped by their class (groups)",
    "csv": "a CSV file of pairs (obj_a, obj_b[, score, subgroup]) or groups (obj, group)",
    "jsonl": "a JSON-lines file of pairs or groups, same columns as csv",
}


class ConfigError(ValueError):
    """A configuration value is missing, unknown or of the wrong type; the message names it."""


@dataclass
class DataConfig:
    """Where the training data comes from."""

    kind: str  # one of DATA_KINDS
    path: str | None = None  # the file, for kind csv / jsonl
    columns: dict[str, str] | None = None  # csv / jsonl: file column of a field, {obj: text}
    categories: list[str] | None = None  # wordnet-lexical: lexical categories (None: a default set)
    limit: int | None = None  # keep at most this many samples (a seeded subset)
    val_fraction: float = 0.2  # share of the samples held out for validation / evaluation
    seed: int = 0  # seed of the subset and of the split


@dataclass
class EncoderConfig:
    """The encoder under the head: frozen, or with its top `trainable_layers` trained."""

    name: str = "minilm"  # one of components.ENCODERS
    path: str | None = None  # model directory, for name "hf"
    image_size: int = 64  # side images are resized to, for name "efficientnet"
    # text encoders: train the top N transformer layers on their cached lower layers (0: frozen)
    trainable_layers: int = 0


@dataclass
class ComponentConfig:
    """A head or a loss: a registered name plus keyword arguments for its constructor."""

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class FitConfig:
    """Everything `quaterion fit` needs: data, model parts, optimisation and output places."""

    data: DataConfig
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    head: ComponentConfig = field(default_factory=lambda: ComponentConfig("SkipConnectionHead"))
    loss: ComponentConfig = field(default_factory=lambda: ComponentConfig("TripletLoss"))
    epochs: int = 5  # passes over the training data
    batch_size: int = 64  # samples per training batch
    lr: float = 1e-3  # Adam learning rate
    seed: int = 0  # seed of initialisation and shuffling
    cache_dir: str | None = None  # where frozen-encoder embeddings persist between runs
    output_dir: str = "servable"  # where the trained servable model is written


def _type_name(hint: Any) -> str:
    """Readable name of a type hint (`int`, `list[str]`, `str or null`)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return "null"
    if typing.get_origin(hint) is not None:
        return str(hint).replace("typing.", "")
    return getattr(hint, "__name__", str(hint))


def convert(value: Any, hint: Any, where: str) -> Any:
    """`value` checked against `hint` (nested dataclasses built recursively; ints become
    floats where a float is expected; NaN and infinities are refused)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(hint):
            try:
                return convert(value, option, where)
            except ConfigError:
                continue
        raise ConfigError(
            f"config field '{where}' must be {_type_name(hint)}, got {type(value).__name__} "
            f"{value!r}"
        )
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where)
    if hint is type(None):
        ok = value is None
    elif hint is Any:
        ok = True
    elif hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
        if ok and not math.isfinite(value):
            raise ConfigError(f"config field '{where}' must be a finite number, got {value}")
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif origin is list:
        ok = isinstance(value, list)
        if ok:
            (item_hint,) = typing.get_args(hint)
            value = [convert(v, item_hint, f"{where}[{i}]") for i, v in enumerate(value)]
    elif origin is dict:
        ok = isinstance(value, dict) and all(isinstance(key, str) for key in value)
    else:
        ok = isinstance(value, hint)
    if not ok:
        raise ConfigError(
            f"config field '{where}' must be {_type_name(hint)}, got {type(value).__name__} "
            f"{value!r}"
        )
    return value


def from_dict(schema: type, data: Any, where: str = "") -> Any:
    """Build dataclass `schema` from a mapping; reject unknown, missing or mistyped fields."""
    label = f"config section '{where}'" if where else "the config"
    if not isinstance(data, dict):
        raise ConfigError(f"{label} must be a mapping of fields, got {type(data).__name__}")
    hints = typing.get_type_hints(schema)
    fields = {f.name: f for f in dataclasses.fields(schema)}
    prefix = f"{where}." if where else ""
    for key in data:
        if key not in fields:
            raise ConfigError(
                f"unknown config field '{prefix}{key}'; valid fields: {', '.join(fields)}"
            )
    values = {}
    for name, spec in fields.items():
        if name in data:
            values[name] = convert(data[name], hints[name], f"{prefix}{name}")
        elif spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
            raise ConfigError(f"missing config field '{prefix}{name}' ({_type_name(hints[name])})")
    return schema(**values)


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The raw mapping in a YAML (.yaml/.yml), TOML (.toml) or JSON (.json) file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    suffix = path.suffix.lower()
    text = path.read_text(encoding="utf-8")
    if suffix in (".yaml", ".yml"):
        import yaml  # optional: quaterion[cli]

        try:
            return yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if suffix == ".toml":
        import tomllib

        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    if suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid JSON: {exc}") from exc
    raise ConfigError(f"config file {path} must end in .yaml, .yml, .toml or .json")
