"""For replay tests: `fleet` as a subprocess, a publisher and a reader that run meanwhile."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nats.js.client import JetStreamContext

from fleet_events import Event
from fleet_runtime.publisher import EventPublisher


@dataclass(frozen=True)
class CliResult:
    """Exit code and output of one `fleet` run."""

    code: int
    out: str
    err: str


async def start_fleet(
    args: Sequence[str], env: Mapping[str, str], log: Path
) -> asyncio.subprocess.Process:
    """Start ``fleet ARGS`` with stdout and stderr appended to ``log``."""
    out = log.open("ab")
    try:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "fleet_runtime.cli", *args, env=dict(env), stdout=out, stderr=out
        )
    finally:
        out.close()


async def run_fleet(args: Sequence[str], env: Mapping[str, str], timeout: float = 120) -> CliResult:  # noqa: ASYNC109
    """Run ``fleet ARGS`` to its end (killed after ``timeout`` seconds)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fleet_runtime.cli",
        *args,
        env=dict(env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return CliResult(int(proc.returncode or 0), out.decode(), err.decode())


@dataclass
class Publisher:
    """Publishes ``events`` in chunks until done, in a task, while a replay runs.

    ``pause_s`` between chunks sets the rate, so publishing lasts through a replay;
    ``finish()`` publishes what is left at full speed.
    """

    js: JetStreamContext
    events: Sequence[Event[Any]]
    chunk: int = 50
    pause_s: float = 0.0
    published: int = 0
    _hurry: bool = False
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin publishing."""
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        publisher = EventPublisher(self.js)
        for start in range(0, len(self.events), self.chunk):
            batch = self.events[start : start + self.chunk]
            await publisher.publish_many(batch)
            self.published += len(batch)
            if not self._hurry:
                # Pacing, not waiting for a condition: it spreads the publishing out in time.
                await asyncio.sleep(self.pause_s)

    async def finish(self) -> None:
        """Publish the rest without pauses and wait until everything is published."""
        assert self._task is not None
        self._hurry = True
        await self._task


@dataclass
class Reader:
    """Calls ``read()`` over and over in a task; keeps every value and every error."""

    read: Callable[[], Awaitable[Any]]
    values: list[Any] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin reading."""
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.values.append(await self.read())
            except Exception as exc:
                self.errors.append(f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(0.005)

    async def stop(self) -> None:
        """Stop reading and wait for the task."""
        self._stop.set()
        assert self._task is not None
        await self._task
