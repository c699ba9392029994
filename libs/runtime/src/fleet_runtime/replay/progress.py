"""How a replay shows its progress: a rich bar on a terminal, log lines elsewhere."""

from __future__ import annotations

import time
from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)


class ReplayProgress(Protocol):
    """What the engine reports while it applies events."""

    def update(self, applied: int, total: int) -> None:
        """``applied`` events so far out of ``total`` (applied + still pending in the stream)."""

    def note(self, text: str) -> None:
        """One line about a step (shadow removed, swap attempt, ...)."""

    def close(self) -> None:
        """Stop drawing."""


class RichProgress:
    """A progress bar with events applied, rate and time to the stream's end."""

    def __init__(self, description: str, console: Console | None = None) -> None:
        self._console = console or Console(stderr=True)
        self._started = time.monotonic()
        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:>10,.0f} ev/s"),
            TimeRemainingColumn(),
            console=self._console,
            transient=False,
        )
        self._task: TaskID = self._bar.add_task(description, total=None, rate=0.0)
        self._drawing = False

    def _draw(self) -> None:
        # Drawn from the first report on, so input refused before any work shows no bar.
        if not self._drawing:
            self._drawing = True
            self._started = time.monotonic()
            self._bar.start()

    def update(self, applied: int, total: int) -> None:
        """Move the bar."""
        self._draw()
        rate = applied / max(time.monotonic() - self._started, 1e-9)
        self._bar.update(self._task, completed=applied, total=max(total, applied), rate=rate)

    def note(self, text: str) -> None:
        """Print a line above the bar."""
        self._draw()
        self._bar.console.print(text)

    def close(self) -> None:
        """Draw the last state and stop."""
        if self._drawing:
            self._bar.stop()


class SilentProgress:
    """No output (tests, benchmarks)."""

    def update(self, applied: int, total: int) -> None:
        """Nothing."""

    def note(self, text: str) -> None:
        """Nothing."""

    def close(self) -> None:
        """Nothing."""
