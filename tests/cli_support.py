"""Inputs of `quaterion` runs in tests: a small groups CSV and a `fit` config over it that uses
the `tiny_bert` fixture's encoder (tests/conftest.py), so a whole fit takes seconds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ANIMALS = ["a small cat", "a large dog", "a young horse", "a wild wolf", "a tame rabbit"]
TOOLS = ["a sharp knife", "a heavy hammer", "a long saw", "a metal wrench", "a small drill"]


def write_groups_csv(path: Path, repeats: int = 2) -> Path:
    """`obj,group` rows: the animals are group 0, the tools group 1, each listed `repeats` times."""
    rows = [f'"{text}",0' for text in ANIMALS] + [f'"{text}",1' for text in TOOLS]
    path.write_text("obj,group\n" + "\n".join(rows * repeats) + "\n")
    return path


def write_fit_config(
    path: Path, bert: Path, data: Path, data_fields: dict | None = None, **fields: Any
) -> Path:
    """A JSON `quaterion fit` config over `data` with the tiny BERT; `data_fields` override
    fields of its `data` section, `fields` top-level ones."""
    config: dict[str, Any] = {
        "data": {"kind": "csv", "path": str(data), "val_fraction": 0.3},
        "encoder": {"name": "hf", "path": str(bert)},
        "head": {"name": "SkipConnectionHead"},
        "loss": {"name": "TripletLoss", "kwargs": {"mining": "all"}},
        "epochs": 2,
        "batch_size": 4,
        "lr": 0.01,
        "output_dir": str(path.parent / "servable"),
    }
    config["data"].update(data_fields or {})
    config.update(fields)
    path.write_text(json.dumps(config))
    return path


def run_cli(capsys: Any, *argv: Any) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `quaterion ARGV` run in this process."""
    from quaterion.cli import main

    code = main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err
