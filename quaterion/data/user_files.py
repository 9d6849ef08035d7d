"""Users' own data: CSV / JSONL files of scored pairs or of grouped objects -> sample lists.

CSV files need a header row naming the columns; JSONL files hold one JSON object per line
(blank lines are skipped). Pairs: `obj_a, obj_b, score` and optionally `subgroup` (default
0). Groups: `obj, group`. Other columns are ignored. Every error names file, line and field.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from quaterion.dataset.similarity_samples import SimilarityGroupSample, SimilarityPairSample

CSV_SUFFIXES = {".csv": ",", ".tsv": "\t"}
JSONL_SUFFIXES = (".jsonl", ".ndjson")
PAIR_FIELDS = ("obj_a", "obj_b", "score")
GROUP_FIELDS = ("obj", "group")


class DataFileError(ValueError):
    """A user data file that cannot be turned into samples; says where and why."""

    def __init__(self, path: Path, line: int, problem: str):
        super().__init__(f"{path}, line {line}: {problem}")
        self.path, self.line, self.problem = path, line, problem


def _csv_records(
    path: Path, delimiter: str, fields: tuple[str, ...]
) -> Iterator[tuple[int, dict[str, Any]]]:
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle, delimiter=delimiter)
        columns = reader.fieldnames or []
        missing = [field for field in fields if field not in columns]
        if missing:
            raise DataFileError(
                path, 1, f"header lacks column(s) {missing} (found {columns}); expected {fields}"
            )
        for row in reader:
            yield reader.line_num, {key: value for key, value in row.items() if key is not None}


def _jsonl_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataFileError(path, line_number, f"invalid JSON ({exc.msg})") from exc
            if not isinstance(record, dict):
                raise DataFileError(
                    path, line_number, f"expected a JSON object, got {type(record).__name__}"
                )
            yield line_number, record


def _records(path: str | os.PathLike, fields: tuple[str, ...]) -> Iterator[tuple[Path, int, dict]]:
    """(path, line, record) for each record, after checking that `fields` are present."""
    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(f"Data file {source} does not exist")
    suffix = source.suffix.lower()
    if suffix in CSV_SUFFIXES:
        records = _csv_records(source, CSV_SUFFIXES[suffix], fields)
    elif suffix in JSONL_SUFFIXES:
        records = _jsonl_records(source)
    else:
        raise ValueError(
            f"Cannot read {source}: unsupported extension {suffix!r}; "
            f"use one of {sorted([*CSV_SUFFIXES, *JSONL_SUFFIXES])}"
        )
    for line, record in records:
        for field in fields:
            if record.get(field) in (None, ""):
                raise DataFileError(source, line, f"missing field {field!r}")
        yield source, line, record


def _number(path: Path, line: int, field: str, value: Any) -> float:
    if isinstance(value, bool):
        raise DataFileError(path, line, f"field {field!r} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise DataFileError(
            path, line, f"field {field!r} must be a number, got {value!r}"
        ) from None
    if not math.isfinite(number):
        raise DataFileError(path, line, f"field {field!r} must be finite, got {value!r}")
    return number


def _integer(path: Path, line: int, field: str, value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise DataFileError(path, line, f"field {field!r} must be an integer, got {value!r}")


def read_pair_samples(path: str | os.PathLike) -> list[SimilarityPairSample]:
    """Pairs `obj_a, obj_b, score [, subgroup]` from a CSV/TSV or JSONL file."""
    samples = []
    for source, line, record in _records(path, PAIR_FIELDS):
        subgroup = record.get("subgroup")
        samples.append(
            SimilarityPairSample(
                obj_a=record["obj_a"],
                obj_b=record["obj_b"],
                score=_number(source, line, "score", record["score"]),
                subgroup=0
                if subgroup in (None, "")
                else _integer(source, line, "subgroup", subgroup),
            )
        )
    return samples


def read_group_samples(path: str | os.PathLike) -> list[SimilarityGroupSample]:
    """Labelled objects `obj, group` (integer group ids) from a CSV/TSV or JSONL file."""
    return [
        SimilarityGroupSample(
            obj=record["obj"], group=_integer(source, line, "group", record["group"])
        )
        for source, line, record in _records(path, GROUP_FIELDS)
    ]
