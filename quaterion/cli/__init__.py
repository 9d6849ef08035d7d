"""The `quaterion` command: demo, fit, evaluate, export, index, search and serve.

Each sub-command lives in its own module and is imported only when it runs, so `--help` is
instant and optional packages (transformers, qdrant, onnx, matplotlib) load on demand.
"""

from __future__ import annotations

import argparse
import csv
import errno
import importlib
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

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


#: exit status of each outcome; see `EXIT_CODES_HELP`
EXIT_ERROR, EXIT_USAGE = 1, 2  # 0: done; 128 + N: stopped by signal N (130, 143)
EXIT_CODES_HELP = (
    "exit status: 0 done; 1 the run failed (a file, the data, the environment: the message "
    "says which and what to do); 2 a usage or config mistake; 130 / 143 stopped by SIGINT "
    "(Ctrl+C) / SIGTERM. Errors are one line; --debug shows the traceback."
)

DEBUG_HELP = "on an error, show the full traceback instead of one line"


class Terminated(BaseException):
    """SIGTERM arrived outside a training loop (which stops on its own, see StopOnSignal)."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    parser = argparse.ArgumentParser(
        prog="quaterion",
        description="Similarity learning on top of frozen, cached encoders.",
        epilog=EXIT_CODES_HELP,
    )
    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,  # keeps a --debug given before the command
        help=DEBUG_HELP,
    )
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        sub = subparsers.add_parser(name, help=help_text, description=help_text, parents=[debug])
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


def _user_error_types() -> tuple[type[BaseException], ...]:
    """Exceptions that report a user's mistake or environment, not a bug: one line each."""
    types: list[type[BaseException]] = [
        OSError,  # FileExistsError, PermissionError, IsADirectoryError, ENOSPC, ...
        ValueError,  # the framework's checks, ConfigError, DataFileError, CorruptFileError
        TypeError,  # the framework's type checks (loader vs loss kind, sample types)
        ImportError,  # a missing optional extra; the message names it
        csv.Error,
        MemoryError,
    ]
    for module, name in (
        ("torch", "OutOfMemoryError"),
        ("lightning_fabric.utilities.exceptions", "MisconfigurationException"),
    ):
        loaded = sys.modules.get(module)  # only what the run imported can have raised
        if loaded is not None and hasattr(loaded, name):
            types.append(getattr(loaded, name))
    return tuple(types)


def _describe(exc: BaseException) -> str:
    """One line for `exc`, with the way out for the OS errors that do not say it."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        text += " (free some space, or write to another disk)"
    elif isinstance(exc, OSError) and exc.errno in (errno.EACCES, errno.EPERM):
        text += " (choose a location you may write to, or fix its permissions)"
    return text


def _raise_terminated(signal_number: int, frame: object) -> None:
    raise Terminated()


@contextmanager
def _sigterm_raises() -> Iterator[None]:
    """Turn SIGTERM into an exception while the command runs, so that cleanup runs (temporary
    files are removed) and the exit status is 143; the previous handler comes back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code (see EXIT_CODES_HELP).

    Every user mistake and environment error ends as one line on stderr, `quaterion
    COMMAND: error: ...`, with status 1 (2 for a config or usage mistake); `--debug` re-raises
    it for the traceback. Anything else is a bug and keeps its traceback.
    """
    args = build_parser().parse_args(argv)
    _quiet_hugging_face()
    try:
        with _sigterm_raises():
            return int(args.handler(args) or 0)
    except BaseException as exc:
        outcome = None if args.debug else _outcome(exc)
        if outcome is None:
            raise
        code, line = outcome
        if line:
            print(f"quaterion {args.command}: {line}", file=sys.stderr)
        return code


def _outcome(exc: BaseException) -> tuple[int, str | None] | None:
    """(exit status, line to print) for an exception that ends a command; None for a bug."""
    from quaterion.cli.config import ConfigError

    if isinstance(exc, KeyboardInterrupt):
        signal_number = signal.SIGINT
    elif isinstance(exc, Terminated):
        signal_number = signal.SIGTERM
    else:  # a FitInterrupted (from a fit without StopOnSignal, e.g. the demo's) has one
        signal_number = getattr(exc, "signal_number", None)
    if signal_number is not None:
        name = signal.Signals(signal_number).name
        return 128 + signal_number, f"interrupted by {name}; nothing more was written"
    if isinstance(exc, SystemExit) and isinstance(exc.code, int):
        return exc.code, None
    if isinstance(exc, ConfigError):
        return EXIT_USAGE, _describe(exc)
    if isinstance(exc, _user_error_types()):
        return EXIT_ERROR, f"error: {_describe(exc)}"
    return None
