"""Training and held-out samples for the CLI, from a config's `data` section or a data file.

Imports only the standard library at module level (the data packages need torch), so that
commands can take its arguments while `quaterion --help` stays instant.
"""

from __future__ import annotations

import argparse
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quaterion.cli.config import ConfigError, DataConfig

if TYPE_CHECKING:
    from quaterion.dataset.group_labels import GroupLabels

#: sample count of the WordNet / Fashion-MNIST kinds when the config gives no `limit`
DEFAULT_LIMIT = 2000
CONFIG_SUFFIXES = (".yaml", ".yml", ".toml", ".json")


@dataclass
class Task:
    """Samples to train on and to evaluate on, with their kind ("groups" or "pairs").

    Group samples keep their labels as the data names them (intent names, category names);
    `labels` maps those names to the integer ids that losses and metrics use.
    """

    kind: str
    train: list[Any]
    held_out: list[Any]
    labels: GroupLabels | None = None  # groups only: every label of the data, sorted

    @property
    def num_groups(self) -> int:
        """Distinct groups (0 for pairs): the class count of class-based losses."""
        return len(self.labels) if self.labels is not None else 0


def _wordnet_lexical(config: DataConfig, limit: int) -> list[Any]:
    from quaterion.data import LEXNAMES, definition_groups, load_wordnet, subsample
    from quaterion.data.wordnet import BROAD_NOUN_CATEGORIES
    from quaterion.dataset import SimilarityGroupSample

    # without categories in the config: the demo's broad set
    categories = list(config.categories or BROAD_NOUN_CATEGORIES)
    unknown = [name for name in categories if not name.startswith("noun.") or name not in LEXNAMES]
    if unknown:
        nouns = [name for name in LEXNAMES if name.startswith("noun.")]
        raise ConfigError(
            f"config field 'data.categories' has unknown noun categories {unknown}; valid: "
            f"{', '.join(nouns)}"
        )
    wanted = {LEXNAMES.index(name) for name in categories}
    samples = [
        SimilarityGroupSample(obj=sample.obj, group=LEXNAMES[sample.group])
        for sample in definition_groups(load_wordnet(("noun",)))
        if sample.group in wanted
    ]
    return subsample(samples, limit, config.seed)


def _whole_groups(samples: list[Any], limit: int, seed: int) -> list[Any]:
    """Samples of randomly chosen groups, whole, until about `limit` samples are kept."""
    members: dict[int, list[Any]] = {}
    for sample in samples:
        members.setdefault(sample.group, []).append(sample)
    order = sorted(members)
    random.Random(seed).shuffle(order)
    kept: list[Any] = []
    for group in order:
        if len(kept) >= limit:
            break
        kept.extend(members[group])
    return kept


def _samples(config: DataConfig, kind: str) -> list[Any]:
    """All samples a data config describes (before the held-out split)."""
    from quaterion.data import (
        CLASS_NAMES,
        fashion_mnist_groups,
        load_wordnet,
        read_group_samples,
        read_pair_samples,
        subsample,
        synonym_groups,
        word_definition_pairs,
    )
    from quaterion.dataset import SimilarityGroupSample

    limit = config.limit if config.limit is not None else DEFAULT_LIMIT
    if config.kind == "wordnet-lexical":
        return _wordnet_lexical(config, limit)
    if config.kind == "wordnet-synonyms":
        return _whole_groups(synonym_groups(load_wordnet(("noun",))), limit, config.seed)
    if config.kind == "wordnet-definitions":
        return subsample(word_definition_pairs(load_wordnet(("noun",))), limit, config.seed)
    if config.kind == "fashion-mnist":
        return [
            SimilarityGroupSample(obj=sample.obj, group=CLASS_NAMES[sample.group])
            for sample in fashion_mnist_groups("train", limit=limit)
        ]
    read = read_group_samples if kind == "groups" else read_pair_samples
    samples = read(config.path, config.columns)
    return samples if config.limit is None else subsample(samples, config.limit, config.seed)


def data_kind(config: DataConfig) -> str | None:
    """ "groups" or "pairs" for built-in kinds; None for files (their loss decides)."""
    if config.kind == "wordnet-definitions":
        return "pairs"
    return None if config.kind in ("csv", "jsonl") else "groups"


def load_task(config: DataConfig, kind: str) -> Task:
    """Samples of `config` as `kind`, split into train and held-out parts (seeded).

    Synonym groups are split by group (held-out words belong to unseen synsets); every other
    kind is split by sample.
    """
    from quaterion.data import train_held_out_split
    from quaterion.dataset.group_labels import GroupLabels

    provided = data_kind(config)
    if provided is not None and provided != kind:
        raise ConfigError(
            f"data.kind {config.kind!r} gives {provided}, but the loss trains on {kind}; "
            f"choose a loss for {provided} (see `quaterion fit --help`)"
        )
    samples = _samples(config, kind)
    if len(samples) < 4:
        raise ConfigError(f"data section gives {len(samples)} samples; at least 4 are needed")
    by_group = (lambda sample: sample.group) if config.kind == "wordnet-synonyms" else None
    train, held_out = train_held_out_split(samples, config.val_fraction, config.seed, by_group)
    if kind == "pairs":
        return Task(kind, train, held_out)
    where = _data_name(config)
    GroupLabels.of_samples(samples).check_trainable(where)
    GroupLabels.of_samples(train).check_trainable(
        f"the training part ({1 - config.val_fraction:.0%}) of {where}"
    )
    return Task(kind, train, held_out, GroupLabels.of_samples(samples))


def _data_name(config: DataConfig) -> str:
    """How errors name the data of `config`: its file, or its kind."""
    return str(config.path) if config.kind in ("csv", "jsonl") else f"data.kind {config.kind!r}"


def add_columns_argument(parser: argparse.ArgumentParser) -> None:
    """`--columns FIELD=COLUMN ...`: a data file's own column names."""
    parser.add_argument(
        "--columns",
        nargs="+",
        metavar="FIELD=COLUMN",
        help="the file's column of a field it names otherwise, e.g. --columns obj=text "
        "group=category",
    )


def parse_columns(items: list[str] | None) -> dict[str, str]:
    """`["obj=text", "group=category"]` -> `{"obj": "text", "group": "category"}`."""
    columns = {}
    for item in items or []:
        field, equals, column = item.partition("=")
        if not (field and equals and column):
            raise ValueError(f"--columns takes FIELD=COLUMN items (e.g. obj=text), got {item!r}")
        columns[field] = column
    return columns


def load_evaluation_samples(spec: str, columns: list[str] | None = None) -> tuple[str, list[Any]]:
    """(kind, samples) named on the command line: a config file (its held-out split) or a
    CSV/TSV/JSONL file of groups (`obj, group`) or pairs (`obj_a, obj_b, score`), whose own
    column names `columns` (`--columns obj=text group=category`) may give."""
    from quaterion.cli.components import load_config, loss_kind
    from quaterion.data import DataFileError, read_group_samples, read_pair_samples
    from quaterion.data.user_files import GROUP_FIELDS, PAIR_FIELDS

    path = Path(spec)
    names = parse_columns(columns)
    if path.suffix.lower() in CONFIG_SUFFIXES:
        if names:
            raise ValueError("--columns is for data files; a fit config names them in data.columns")
        config = load_config(path)
        kind = loss_kind(config.loss.name)
        return kind, load_task(config.data, kind).held_out
    readers = [
        (kind, read, fields)
        for kind, read, fields in (
            ("groups", read_group_samples, GROUP_FIELDS),
            ("pairs", read_pair_samples, (*PAIR_FIELDS, "subgroup")),
        )
        if set(names) <= set(fields)
    ]
    if not readers:
        raise ValueError(
            f"--columns names fields {sorted(names)}; groups have {GROUP_FIELDS}, pairs "
            f"{PAIR_FIELDS} (and subgroup)"
        )
    problems = []
    for kind, read, _ in readers:
        try:
            return kind, read(path, names)
        except DataFileError as error:
            problems.append(f"{kind} ({error.problem})")
    raise ValueError(f"{path} holds neither " + " nor ".join(problems))
