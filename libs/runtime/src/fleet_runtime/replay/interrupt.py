"""Ctrl-C (SIGINT) and SIGTERM during a replay: honoured until the swap commits.

A cancelled task alone cannot be trusted to stop a swap. On Python 3.11 asyncio loses a
cancel in ordinary situations: ``asyncio.run`` handles SIGINT between two bytecodes of
whatever runs, usually the replay's own task, so the cancel is only pending; an
``asyncio.timeout`` entered before the next await takes that pending cancel for its own
if it expires at once (the swap's catch-up once its budget is spent) and raises
``TimeoutError``; ``asyncio.wait_for`` (nats-py's requests) returns a reply that arrived
in the same loop turn as the cancel. The replay then went on and swapped.

So a signal is recorded here, and the record decides: the engine checks it between
batches and swap attempts, and the store adapter calls ``before_commit`` as the last
thing before its swap becomes irreversible. The cancel only cuts a wait short. The
signal is handled by the event loop (``loop.add_signal_handler``), not in the middle of
the replay's code, and never cancels the commit or what follows it.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class ReplayInterrupted(Exception):
    """The replay was stopped by a signal before its swap committed: live is untouched."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """The shell's code for a process ended by this signal (130 for Ctrl-C)."""
        return 128 + self.signum


class Interrupt:
    """The signals a replay received, and whether they may still cancel it."""

    def __init__(self) -> None:
        self.signum: int | None = None
        """The first signal received (None: none)."""
        self._task: asyncio.Task[Any] | None = None
        self._committing = False

    @contextmanager
    def installed(self) -> Iterator[None]:
        """Handle SIGINT and SIGTERM for the current task while the block runs.

        A cancel the block ends with because of a signal leaves it as
        ``ReplayInterrupted``, so the caller sees one outcome whichever way it came.
        """
        loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        for sig in SIGNALS:
            loop.add_signal_handler(sig, self.received, sig)
        try:
            yield
        except asyncio.CancelledError:
            if self.signum is None or self._task is None:
                raise
            while self._task.uncancel():
                pass
            raise ReplayInterrupted(self.signum) from None
        finally:
            for sig in SIGNALS:
                loop.remove_signal_handler(sig)

    async def around(self, work: Awaitable[T]) -> T:
        """Await ``work`` with the signals handled here (``installed``)."""
        with self.installed():
            return await work

    def received(self, signum: int) -> None:
        """Record ``signum``; cancel the replay's task unless its swap is committing."""
        if self.signum is None:
            self.signum = signum
        if not self._committing and self._task is not None and not self._task.done():
            self._task.cancel()

    def check(self) -> None:
        """Raise ``ReplayInterrupted`` if a signal was received."""
        if self.signum is not None:
            raise ReplayInterrupted(self.signum)

    def before_commit(self) -> None:
        """The swap is about to become irreversible: last check, then no more cancels.

        The adapter calls it with no await between it and its commit, so a signal the
        loop handled before the commit stops the swap, and one handled after it lets the
        swap and its clean-up finish.
        """
        self.check()
        self._committing = True

    def not_committed(self) -> None:
        """The adapter is catching up again: its last commit attempt did not happen."""
        self._committing = False
