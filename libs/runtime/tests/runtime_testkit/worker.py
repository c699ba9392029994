"""The test worker: `python -m runtime_testkit.worker` as a process tests can kill, or in-process.

Environment of the process: ``RT_NATS_URL``, ``RT_DSN``, optional ``RT_POISON_FLAG`` (a
path; poison trades fail while it exists), ``RT_KILLER`` (a trade id: the process ends
itself when its handler gets it), ``RT_READY_FILE`` (the health port is written there once
the worker is ready) and ``RT_BATCH_SIZE``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import nats
from nats.js.client import JetStreamContext

from fleet_events import TRADES_STREAM
from fleet_runtime.consume import Subscription
from fleet_runtime.logs import configure_logging
from fleet_runtime.settings import WorkerSettings
from fleet_runtime.topology import apply, parse_topology
from fleet_runtime.worker import serve
from fleet_testing.waiting import wait_until

from .store import PgTestStore

WORKER = "rt-test"
TOPOLOGY = Path(__file__).with_name("topology.yaml")
TESTS_DIR = Path(__file__).resolve().parents[1]


async def apply_test_topology(js: JetStreamContext, text: str | None = None) -> None:
    """Create the test streams and the rt-test durable."""
    topology, problems = parse_topology(text or TOPOLOGY.read_text())
    assert topology is not None, [p.render() for p in problems]
    await apply(js, topology)


@asynccontextmanager
async def jetstream(url: str) -> AsyncIterator[JetStreamContext]:
    """A JetStream context on its own connection."""
    nc = await nats.connect(url)
    try:
        yield nc.jetstream()
    finally:
        await nc.close()


def settings_for(nats_url: str, batch_size: int = 500) -> WorkerSettings:
    """Worker settings with a short shutdown deadline."""
    return WorkerSettings(
        nats_url=nats_url, batch_size=batch_size, batch_max_wait_ms=20, shutdown_timeout_s=10
    )


async def run_worker(
    nats_url: str,
    dsn: str,
    *,
    poison_flag: Path | None = None,
    batch_size: int = 500,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[int], None] | None = None,
    probe_store: bool = True,
    killer: str | None = None,
) -> None:
    """Open the store and serve the rt-test durable until ``stop`` (or SIGTERM)."""
    store = await PgTestStore.open(dsn, poison_flag, lazy=not probe_store)
    store.killer = killer
    try:
        await serve(
            worker=WORKER,
            settings=settings_for(nats_url, batch_size),
            subscriptions=[Subscription(TRADES_STREAM, WORKER, store.handle)],
            store_probe=store.probe if probe_store else None,
            stop=stop,
            on_ready=on_ready,
        )
    finally:
        await store.close()


@dataclass
class InProcessWorker:
    """A worker running as a task of the test's event loop."""

    task: asyncio.Task[None]
    stop: asyncio.Event
    port: int


@asynccontextmanager
async def worker_task(
    nats_url: str,
    dsn: str,
    *,
    poison_flag: Path | None = None,
    batch_size: int = 500,
    probe_store: bool = True,
) -> AsyncIterator[InProcessWorker]:
    """Run the test worker in this event loop; stop it cleanly on exit."""
    stop = asyncio.Event()
    ports: list[int] = []
    task = asyncio.create_task(
        run_worker(
            nats_url,
            dsn,
            poison_flag=poison_flag,
            batch_size=batch_size,
            stop=stop,
            on_ready=ports.append,
            probe_store=probe_store,
        )
    )
    await wait_until(lambda: ports or task.done(), 20, "the worker to be ready")
    if task.done():
        task.result()
    running = InProcessWorker(task, stop, ports[0])
    try:
        yield running
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


class WorkerProcess:
    """The test worker as a child process (for SIGKILL and SIGTERM)."""

    def __init__(
        self,
        nats_url: str,
        dsn: str,
        workdir: Path,
        *,
        batch_size: int = 200,
        killer: str | None = None,
    ) -> None:
        self._env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")]),
            "RT_NATS_URL": nats_url,
            "RT_DSN": dsn,
            "RT_BATCH_SIZE": str(batch_size),
        }
        if killer is not None:
            self._env["RT_KILLER"] = killer
        self._workdir = workdir
        self._starts = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start a new process (log in ``workdir/worker-<n>.log``)."""
        self._starts += 1
        ready = self._workdir / f"ready-{self._starts}"
        log = (self._workdir / f"worker-{self._starts}.log").open("wb")
        self.ready_file = ready
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "runtime_testkit.worker"],
            env={**self._env, "RT_READY_FILE": str(ready)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    async def wait_ready(self, within_s: float = 20) -> None:
        """Until the process wrote its health port."""
        assert self.proc is not None
        proc = self.proc
        await wait_until(
            lambda: self.ready_file.exists() or proc.poll() is not None, within_s, "worker ready"
        )
        assert proc.poll() is None, f"worker exited with {proc.returncode}"

    def kill(self) -> None:
        """SIGKILL and reap."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self) -> None:
        """SIGTERM (does not wait)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)

    def close(self) -> None:
        """Kill whatever still runs."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def _main() -> None:
    configure_logging("INFO", "json")
    ready_file = os.environ.get("RT_READY_FILE")
    poison = os.environ.get("RT_POISON_FLAG")

    def on_ready(port: int) -> None:
        if ready_file:
            Path(ready_file).write_text(str(port))

    asyncio.run(
        run_worker(
            os.environ["RT_NATS_URL"],
            os.environ["RT_DSN"],
            poison_flag=Path(poison) if poison else None,
            batch_size=int(os.environ.get("RT_BATCH_SIZE", "500")),
            on_ready=on_ready,
            killer=os.environ.get("RT_KILLER"),
        )
    )


if __name__ == "__main__":
    _main()
