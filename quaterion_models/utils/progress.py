"""The one progress-bar helper of the project, with one off switch (QUATERION_PROGRESS=0)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.errors import LiveError
from rich.progress import Progress

T = TypeVar("T")

PROGRESS_ENV_VAR = "QUATERION_PROGRESS"


def progress_enabled() -> bool:
    """False when the user switched progress bars off with QUATERION_PROGRESS=0."""
    return os.environ.get(PROGRESS_ENV_VAR, "1").strip().lower() not in {"0", "false", "no", "off"}


def track(
    iterable: Iterable[T],
    total: int | None = None,
    description: str = "",
    enabled: bool = True,
) -> Iterator[T]:
    """Yield from `iterable` while drawing a rich progress bar on stderr.

    Plain iteration when disabled (argument or env var) or when another live display (e.g.
    a Lightning progress bar) is already on screen. Works when stderr is not a terminal.

    Args:
        iterable: what to iterate.
        total: number of items (default: `len(iterable)` when it has one).
        description: text shown left of the bar.
        enabled: draw the bar at all.
    """
    if not (enabled and progress_enabled()):
        yield from iterable
        return
    if total is None:
        try:
            total = len(iterable)  # type: ignore[arg-type]
        except TypeError:  # e.g. a DataLoader over an IterableDataset: length unknown
            total = None
    progress = Progress(console=Console(stderr=True), transient=True)
    try:
        progress.start()
    except LiveError:
        yield from iterable
        return
    try:
        yield from progress.track(iterable, total=total, description=description)
    finally:
        progress.stop()
