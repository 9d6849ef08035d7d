"""Quaterion's themed Rich progress bar for Lightning runs."""

from __future__ import annotations

from typing import Any

from pytorch_lightning.callbacks import RichProgressBar
from pytorch_lightning.callbacks.progress.rich_progress import (
    BatchesProcessedColumn,
    CustomBarColumn,
    CustomTimeColumn,
    RichProgressBarTheme,
)
from rich.progress import ProgressColumn, Task, TextColumn
from rich.style import Style
from rich.table import Column
from rich.text import Text

from quaterion_models.utils.progress import progress_enabled

QUATERION_THEME = RichProgressBarTheme(
    description="white",
    progress_bar="#4881AD",
    progress_bar_finished="#67C87A",
    progress_bar_pulse="#67C87A",
    batch_progress="white",
    time="grey54",
    processing_speed="grey70",
    metrics="white",
)


class FixedLengthProcessionSpeed(ProgressColumn):
    """Speed column (``"12.34it/s"``) whose width never shrinks, so the line does not jitter.

    Args:
        style: rich style of the text.
    """

    def __init__(self, style: str | Style):
        super().__init__()
        self.style = style
        self._width = 0

    def render(self, task: Task) -> Text:
        """The speed of `task`, right-aligned to the widest speed shown so far.

        Args:
            task: the rich task drawn.
        """
        speed = f"{task.speed or 0.0:.2f}it/s"
        self._width = max(self._width, len(speed))
        return Text(speed.rjust(self._width), style=self.style)


class QuaterionProgressBar(RichProgressBar):
    """``RichProgressBar`` with Quaterion's theme and a speed column that does not jitter.

    ``QUATERION_PROGRESS=0`` in the environment turns it off, like every other progress bar of
    the project.

    Args:
        refresh_rate: redraw every this many batches.
        leave: keep each finished epoch's bar on screen.
        theme: colours (default: Quaterion's).
        console_kwargs: arguments of the rich `Console`.
    """

    def __init__(
        self,
        refresh_rate: int = 1,
        leave: bool = False,
        theme: RichProgressBarTheme | None = None,
        console_kwargs: dict[str, Any] | None = None,
    ):
        super().__init__(
            refresh_rate=refresh_rate,
            leave=leave,
            theme=theme or QUATERION_THEME,
            console_kwargs=console_kwargs,
        )

    @property
    def is_enabled(self) -> bool:
        """False when Lightning disables the bar or the user set QUATERION_PROGRESS=0."""
        return super().is_enabled and progress_enabled()

    def configure_columns(self, trainer: Any) -> list:
        """The bar's columns: description, bar, counts, time and a speed that does not jitter.

        Args:
            trainer: the Lightning trainer.
        """
        return [
            TextColumn(
                "[progress.description]{task.description}", table_column=Column(min_width=9)
            ),
            CustomBarColumn(
                complete_style=self.theme.progress_bar,
                finished_style=self.theme.progress_bar_finished,
                pulse_style=self.theme.progress_bar_pulse,
            ),
            BatchesProcessedColumn(style=self.theme.batch_progress),
            CustomTimeColumn(style=self.theme.time),
            FixedLengthProcessionSpeed(style=self.theme.processing_speed),
        ]
