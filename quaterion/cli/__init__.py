"""The `quaterion` command: demo, fit, evaluate, export, index, search and serve.

Each sub-command lives in its own module and is imported only when it runs, so `--help` is
instant and optional packages (transformers, qdrant, onnx, matplotlib) load on demand.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# sub-command -> (module with `add_arguments(parser)` and `run(args) -> int`, one-line help)
COMMANDS = {
    "demo": (
        "quaterion.demo",
        "fine-tune a head on frozen MiniLM over WordNet and show before/after retrieval",
    ),
    "fit": ("quaterion.cli.fit_command", "train a head from a YAML/TOML config, save a servable"),
    "evaluate": ("quaterion.cli.evaluate_command", "retrieval metrics of a servable on data"),
    "export": ("quaterion.cli.export_command", "export a servable to ONNX"),
    "index": ("quaterion.cli.store_commands", "embed data with a servable into a vector store"),
    "search": ("quaterion.cli.store_commands", "nearest neighbours of a text query in a store"),
    "serve": (
        "quaterion.cli.serve_command",
        "serve a servable and its store over HTTP, with a page",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    parser = argparse.ArgumentParser(
        prog="quaterion",
        description="Similarity learning on top of frozen, cached encoders.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        getattr(module, f"add_{name}_arguments")(sub)
        sub.set_defaults(handler=getattr(module, f"run_{name}"))
    return parser


def _quiet_hugging_face() -> None:
    """The CLI draws its own progress bars: silence transformers' per-file bars and notices."""
    try:
        from transformers.utils import logging as transformers_logging
    except ImportError:  # text extras not installed: nothing to silence
        return
    transformers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    from quaterion.cli.config import ConfigError

    args = build_parser().parse_args(argv)
    _quiet_hugging_face()
    try:
        return int(args.handler(args) or 0)
    except ConfigError as exc:
        print(f"quaterion {args.command}: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError, ImportError) as exc:
        print(f"quaterion {args.command}: error: {exc}", file=sys.stderr)
        return 1
