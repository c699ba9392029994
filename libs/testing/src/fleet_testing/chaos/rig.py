"""The system under test: a 3-node NATS cluster, PostgreSQL, Redis, MongoDB and worker processes.

Servers come from the launcher (``Fleet``); workers run as ``fleet worker run NAME``
processes with the environment `fleet dev up` gives them (their own databases, roles and
migrations). Every worker, server and cluster node can be killed, stopped, paused and
brought back; a sampler records each durable consumer's lag throughout.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import nats
import nats.errors
from nats.aio.client import Client as NATS
from nats.js.client import JetStreamContext

from fleet_runtime.dev import worker_env, worker_partitions
from fleet_runtime.topology import Topology, apply, load_topology
from fleet_runtime.workers import get_worker
from fleet_testing.fleet import Fleet
from fleet_testing.probes import http_ok
from fleet_testing.servers import NatsCluster, NatsServer
from fleet_testing.waiting import wait_until
from fleet_testing.workerprocs import start_worker

READY_TIMEOUT_S = 90.0
# A replicated stream's creation waits for a quorum to write it: on a loaded machine that
# takes longer than nats-py's default 5 s API timeout.
JS_TIMEOUT_S = 20.0
APPLY_ATTEMPTS = 3
SAMPLE_EVERY_S = 0.5


async def _quiet(exc: Exception) -> None:
    """The suite's client loses a node on purpose: its errors are expected, not news."""


async def _nothing() -> None:
    """No report on a disconnect either (the client reconnects to another node)."""


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: ``*`` is one word, a final ``>`` one or more."""
    want, got = pattern.split("."), subject.split(".")
    for i, word in enumerate(want):
        if word == ">":
            return len(got) > i
        if i >= len(got) or word not in ("*", got[i]):
            return False
    return len(want) == len(got)


def env_prefix(worker: str) -> str:
    """The prefix of a worker's settings (``TRADE_RECORDER_``)."""
    return worker.upper().replace("-", "_") + "_"


@dataclass
class WorkerProc:
    """One worker process (a partition of a worker, or all of it)."""

    name: str
    partition: int | None
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes]

    @property
    def label(self) -> str:
        """``trade-recorder`` or ``trade-recorder-p1``."""
        return self.name if self.partition is None else f"{self.name}-p{self.partition}"

    @property
    def health_port(self) -> int:
        """The port of its /readyz."""
        return int(self.env[f"{env_prefix(self.name)}HEALTH_PORT"])


@dataclass
class LagSample:
    """Every watched consumer's lag (pending + awaiting ack) at one moment."""

    at: float
    lags: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """The sum over consumers."""
        return sum(self.lags.values())


class Rig:
    """Servers, topology and workers for the chaos suite; ``stop`` removes everything."""

    def __init__(self, streams_file: Path, workers: list[str], log_dir: Path) -> None:
        self.streams_file = streams_file
        self.topology: Topology = load_topology(streams_file)
        self.worker_names = workers
        self.log_dir = log_dir
        self.fleet = Fleet(use_external=False, persistent=True)
        self.cluster: NatsCluster | None = None
        self.nc: NATS | None = None
        self.workers: dict[str, WorkerProc] = {}
        self.samples: list[LagSample] = []
        self._sampler: asyncio.Task[None] | None = None

    @property
    def js(self) -> JetStreamContext:
        """The suite's own JetStream client (connected to every node)."""
        assert self.nc is not None, "the rig is not started"
        return self.nc.jetstream(timeout=JS_TIMEOUT_S)

    @property
    def nats(self) -> NatsCluster:
        """The NATS cluster."""
        assert self.cluster is not None, "the rig is not started"
        return self.cluster

    @property
    def durables(self) -> list[tuple[str, str]]:
        """(stream, durable) of every consumer a running worker binds to."""
        return [
            (d.stream, d.name)
            for name in self.worker_names
            for d in self.topology.durables_for(name)
        ]

    def consumers_of(self, stream: str, subject: str) -> set[str]:
        """The running workers one of whose consumers on ``stream`` receives ``subject``
        (as published, before any partition transform)."""
        return {
            spec.worker
            for spec in self.topology.consumers
            if spec.worker in self.worker_names
            and spec.stream == stream
            and any(subject_matches(f, subject) for f in spec.filter_subjects or [">"])
        }

    async def start(self) -> None:
        """Start the servers and the cluster, apply the topology, start every worker."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        s3 = ["s3"] if "backup-runner" in self.worker_names else []
        await asyncio.to_thread(self.fleet.start, "postgres", "redis", "mongo", *s3)
        self.cluster = await asyncio.to_thread(self.fleet.launch_nats_cluster, 3)
        # The cluster's URL and the credentials its users were generated with.
        fleet_env = {**self.fleet.env(), **self.cluster.env()}
        self.nc = await nats.connect(
            servers=self.cluster.urls,
            name="fleet-chaos",
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.25,
            error_cb=_quiet,
            disconnected_cb=_nothing,
        )
        await self._apply_topology()
        for name in self.worker_names:
            spec = get_worker(name)
            for partition in worker_partitions(self.topology, name):
                env = {**(await worker_env(spec, fleet_env, self.streams_file))}
                label = name if partition is None else f"{name}-p{partition}"
                log = self.log_dir / f"{label}.log"
                proc = start_worker(name, env, log, partition)
                self.workers[label] = WorkerProc(name, partition, env, log, proc)
        for worker in self.workers.values():
            await self.wait_ready(worker)
        self._sampler = asyncio.create_task(self._sample())

    async def _apply_topology(self) -> None:
        """Apply the topology, again after a timed-out API call (applying is idempotent: a
        stream the timed-out call did create is found unchanged the next time)."""
        for attempt in range(1, APPLY_ATTEMPTS + 1):
            try:
                await apply(self.js, self.topology)
                return
            except nats.errors.TimeoutError:
                if attempt == APPLY_ATTEMPTS:
                    raise
                await asyncio.sleep(1.0)

    def env_value(self, worker: str, setting: str) -> str:
        """A setting of ``worker``'s environment (``POSTGRES_DSN``: its own DSN)."""
        for w in self.workers.values():
            if w.name == worker:
                return w.env[f"{env_prefix(worker)}{setting}"]
        raise KeyError(f"{worker} is not running in this rig")

    def labels(self, worker: str) -> list[str]:
        """The process labels of ``worker`` (one per partition)."""
        return [label for label, w in self.workers.items() if w.name == worker]

    async def wait_ready(self, worker: WorkerProc) -> None:
        """Until the process says ready on /readyz (it fails if the process exits)."""

        def ready() -> bool:
            if worker.proc.poll() is not None:
                raise AssertionError(
                    f"worker {worker.label} exited with {worker.proc.returncode}: see {worker.log}"
                )
            return http_ok("127.0.0.1", worker.health_port, "/readyz")

        await wait_until(lambda: asyncio.to_thread(ready), READY_TIMEOUT_S, f"{worker.label} ready")

    async def kill_worker(self, label: str) -> None:
        """kill -9 one worker process and wait until it is gone."""
        worker = self.workers[label]
        worker.proc.send_signal(signal.SIGKILL)
        await asyncio.to_thread(worker.proc.wait, 10)

    def restart_worker(self, label: str) -> WorkerProc:
        """Start the process again with the same settings (``wait_ready`` waits for it)."""
        worker = self.workers[label]
        worker.proc = start_worker(worker.name, worker.env, worker.log, worker.partition)
        return worker

    def signal_worker(self, label: str, sig: signal.Signals) -> None:
        """Send ``sig`` (SIGSTOP, SIGCONT) to one worker process."""
        os.kill(self.workers[label].proc.pid, sig)

    async def stream_leader(self, stream: str) -> NatsServer:
        """The cluster node that leads ``stream`` now."""
        info = await self.js.stream_info(stream)
        assert info.cluster is not None, f"{stream} is not clustered"
        return next(n for n in self.nats.nodes if n.name == info.cluster.leader)

    async def wait_replicas_current(self, streams: list[str], timeout: float = 60) -> None:  # noqa: ASYNC109
        """Until each stream has a leader and every replica is current again."""

        async def current() -> bool:
            for stream in streams:
                try:
                    info = await asyncio.wait_for(self.js.stream_info(stream), 2)
                except (TimeoutError, Exception):
                    return False
                cluster = info.cluster
                if cluster is None or not cluster.leader:
                    return False
                replicas = cluster.replicas or []
                if len(replicas) != 2 or not all(r.current for r in replicas):
                    return False
            return True

        await wait_until(current, timeout, f"{streams} replicas current", poll_s=0.25)

    async def lags(self) -> dict[str, int]:
        """Each watched consumer's pending + awaiting-ack count by ``STREAM/durable`` (one
        worker may have a durable of the same name on several streams); missing when
        unanswered."""
        out: dict[str, int] = {}
        for stream, durable in self.durables:
            with contextlib.suppress(Exception):
                info = await asyncio.wait_for(self.js.consumer_info(stream, durable), 2)
                out[f"{stream}/{durable}"] = (info.num_pending or 0) + (info.num_ack_pending or 0)
        return out

    async def caught_up(self, limit: int) -> bool:
        """Whether every watched consumer answered and their lags add up to ``limit`` or less."""
        lags = await self.lags()
        return len(lags) == len(self.durables) and sum(lags.values()) <= limit

    async def drained(self) -> bool:
        """Whether every watched consumer has nothing pending and nothing awaiting ack."""
        lags = await self.lags()
        return len(lags) == len(self.durables) and not any(lags.values())

    async def _sample(self) -> None:
        while True:
            lags = await self.lags()
            if lags:
                self.samples.append(LagSample(time.monotonic(), lags))
            await asyncio.sleep(SAMPLE_EVERY_S)

    def dead_workers(self) -> list[str]:
        """Labels of worker processes that exited (none should, outside a fault)."""
        return [label for label, w in self.workers.items() if w.proc.poll() is not None]

    async def stop(self) -> None:
        """Stop the sampler, the workers (SIGTERM, then SIGKILL), the client and servers."""
        if self._sampler is not None:
            self._sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampler
        for worker in self.workers.values():
            if worker.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.proc.pid, signal.SIGCONT)
                worker.proc.send_signal(signal.SIGTERM)
        for worker in self.workers.values():
            try:
                await asyncio.to_thread(worker.proc.wait, 30)
            except subprocess.TimeoutExpired:
                worker.proc.kill()
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await self.nc.close()
        await asyncio.to_thread(self.fleet.stop)
