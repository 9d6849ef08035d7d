"""Users' own data: CSV / JSONL files of scored pairs or of grouped objects -> sample lists.

CSV files need a header row naming the columns; JSONL files hold one JSON object per line
(blank lines are skipped). Pairs: `obj_a, obj_b, score` and optionally `subgroup` (default
0). Groups: `obj, group`, where a group is any label (an intent name, a class id): when every
label of a file is an integer they become ints, otherwise they stay strings. Other columns are
ignored. Files are UTF-8, with or without a byte-order mark; fields may be of any length. Every
error names file, line and field.
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
import warnings
from collections import defaultdict
from collections.abc import Hashable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from quaterion.dataset.similarity_samples import SimilarityGroupSample, SimilarityPairSample

CSV_SUFFIXES = {".csv": ",", ".tsv": "\t"}
JSONL_SUFFIXES = (".jsonl", ".ndjson")
PAIR_FIELDS = ("obj_a", "obj_b", "score")
GROUP_FIELDS = ("obj", "group")


class DataFileError(ValueError):
    """A user data file that cannot be turned into samples; says where and why.

    Args:
        path: the file.
        line: the line (1-based) with the problem.
        problem: what is wrong and how to fix it.
    """

    def __init__(self, path: Path, line: int, problem: str):
        super().__init__(f"{path}, line {line}: {problem}")
        self.path, self.line, self.problem = path, line, problem


def _first_undecodable_line(path: Path) -> tuple[int, str]:
    """(line number, offending byte in hex) of the first line of `path` that is not UTF-8."""
    with open(path, "rb") as handle:
        for line_number, raw in enumerate(handle, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                return line_number, raw[exc.start : exc.start + 1].hex()
    return 1, "??"


def _not_utf8(path: Path) -> DataFileError:
    """The error for a file that is not UTF-8: its first undecodable line and how to convert."""
    line, byte = _first_undecodable_line(path)
    converted = path.with_name(f"{path.stem}.utf8{path.suffix}")
    return DataFileError(
        path,
        line,
        f"not UTF-8 text (byte 0x{byte}); convert the file, e.g. from Latin-1 with "
        f"`iconv -f latin1 -t utf-8 {path} > {converted}`",
    )


@contextmanager
def _utf8_lines(path: Path, newline: str | None = None) -> Iterator[Any]:
    """The file opened as UTF-8 text, a leading byte-order mark skipped; a decoding error
    becomes a DataFileError naming the line and the fix."""
    try:
        with open(path, newline=newline, encoding="utf-8-sig") as handle:
            yield handle
    except UnicodeDecodeError:
        raise _not_utf8(path) from None


@contextmanager
def _unlimited_csv_fields() -> Iterator[None]:
    """Lift the csv module's field-size limit (128 KiB) while reading, then restore it."""
    previous = csv.field_size_limit()
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def _csv_records(
    path: Path, delimiter: str, fields: tuple[str, ...]
) -> Iterator[tuple[int, dict[str, Any]]]:
    with _utf8_lines(path, newline="") as handle, _unlimited_csv_fields():
        reader = csv.DictReader(handle, delimiter=delimiter)
        try:
            columns = reader.fieldnames or []
            missing = [field for field in fields if field not in columns]
            if missing:
                raise DataFileError(
                    path,
                    1,
                    f"header lacks column(s) {missing} (found {columns}); rename them, or "
                    "name the file's own columns: `data.columns: {obj: text, group: category}` "
                    "in a fit config, `--columns obj=text group=category` on the command line",
                )
            for row in reader:
                if None in row:  # DictReader's key for values beyond the header's columns
                    raise DataFileError(
                        path,
                        reader.line_num,
                        f"{len(columns) + len(row[None])} fields, but the header names "
                        f"{len(columns)}; quote a field that contains {delimiter!r}",
                    )
                yield reader.line_num, row
        except csv.Error as exc:
            raise DataFileError(path, reader.line_num, f"malformed CSV ({exc})") from None


def _jsonl_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with _utf8_lines(path) as handle:
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


def _records(
    path: str | os.PathLike, fields: tuple[str, ...], columns: Mapping[str, str] | None
) -> Iterator[tuple[Path, int, dict]]:
    """(path, line, record) for each record, after checking that `fields` are present; a
    record's keys are field names, read from the file's columns named in `columns`."""
    columns = dict(columns or {})
    known = (*fields, "subgroup") if fields == PAIR_FIELDS else fields
    unknown = [field for field in columns if field not in known]
    if unknown:
        raise ValueError(f"columns names unknown field(s) {unknown}; valid fields: {known}")
    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(f"Data file {source} does not exist")
    suffix = source.suffix.lower()
    if suffix in CSV_SUFFIXES:
        file_fields = tuple(columns.get(field, field) for field in fields)
        records = _csv_records(source, CSV_SUFFIXES[suffix], file_fields)
    elif suffix in JSONL_SUFFIXES:
        records = _jsonl_records(source)
    else:
        raise ValueError(
            f"Cannot read {source}: unsupported extension {suffix!r}; "
            f"use one of {sorted([*CSV_SUFFIXES, *JSONL_SUFFIXES])}"
        )
    for line, record in records:
        record = {**record, **{field: record.get(column) for field, column in columns.items()}}
        for field in fields:
            if record.get(field) in (None, ""):
                raise DataFileError(source, line, f"missing field {columns.get(field, field)!r}")
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


def read_pair_samples(
    path: str | os.PathLike, columns: Mapping[str, str] | None = None
) -> list[SimilarityPairSample]:
    """Pairs `obj_a, obj_b, score [, subgroup]` from a CSV/TSV or JSONL file.

    Args:
        path: a CSV, TSV or JSONL file with the fields `obj_a`, `obj_b`, `score`.
        columns: the file's column (or JSON key) of a field named otherwise there, e.g.
            `{"obj_a": "question", "obj_b": "answer"}`.

    Returns:
        one `SimilarityPairSample` per record.
    """
    samples = []
    for source, line, record in _records(path, PAIR_FIELDS, columns):
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


def _label(path: Path, line: int, value: Any) -> int | str:
    """A group label as a file holds it: an integer or a string (without surrounding spaces)."""
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise DataFileError(path, line, f"field 'group' must be an integer or a string, got {value!r}")


def _as_integer(label: int | str) -> int | None:
    """`label` as an int when it is one or spells one ("7", " -2 "), else None."""
    if isinstance(label, int):
        return label
    try:
        return int(label.strip())
    except ValueError:
        return None


def _warn_objects_in_several_groups(path: Path, samples: list[SimilarityGroupSample]) -> None:
    """Warn, with the count, when one object is listed under two groups or more."""
    groups: dict[Hashable, set] = defaultdict(set)
    for sample in samples:
        try:
            groups[sample.obj].add(sample.group)
        except TypeError:  # unhashable objects (JSON objects) cannot be compared this way
            return
    repeated = {obj: labels for obj, labels in groups.items() if len(labels) > 1}
    if repeated:
        obj, labels = next(iter(repeated.items()))
        warnings.warn(
            f"{path}: {len(repeated)} object(s) are listed under two groups or more (e.g. "
            f"{obj!r:.60} in {sorted(labels, key=str)}); each copy counts as similar to its own "
            "group only, so the copies pull against each other: keep each object in one group",
            UserWarning,
            stacklevel=3,
        )


def read_group_samples(
    path: str | os.PathLike, columns: Mapping[str, str] | None = None
) -> list[SimilarityGroupSample]:
    """Labelled objects `obj, group` from a CSV/TSV or JSONL file.

    Labels are kept as the file names them (use `GroupLabels` for integer ids), except that a
    file whose labels are all integers ("0", "7") gives ints.

    Args:
        path: a CSV, TSV or JSONL file with the fields `obj`, `group`.
        columns: the file's column (or JSON key) of a field named otherwise there, e.g.
            `{"obj": "text", "group": "category"}`.

    Returns:
        one `SimilarityGroupSample` per record.
    """
    samples, source = [], Path(path)
    for source, line, record in _records(path, GROUP_FIELDS, columns):
        samples.append(
            SimilarityGroupSample(obj=record["obj"], group=_label(source, line, record["group"]))
        )
    integers = [_as_integer(sample.group) for sample in samples]
    if None not in integers:
        samples = [
            SimilarityGroupSample(obj=sample.obj, group=integer)
            for sample, integer in zip(samples, integers, strict=True)
        ]
    _warn_objects_in_several_groups(source, samples)
    return samples
