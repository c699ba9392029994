"""`fleet dev up`: embedded servers, the topology, every ready worker and a simulator.

The servers come from fleet-testing's launcher, imported only here and only when the
command runs: worker images do not carry the launcher or the server binaries.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import os
import signal
import socket
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import IO, Any

import nats.js.errors
from nats.js.client import JetStreamContext

from fleet_runtime.errors import UserError
from fleet_runtime.natsauth import env_auth
from fleet_runtime.publisher import EventPublisher
from fleet_runtime.security.grants import PUBLISHER
from fleet_runtime.simulation import MarketSimulator
from fleet_runtime.topology import Topology, apply, load_topology
from fleet_runtime.worker import connect_nats
from fleet_runtime.workers import WorkerSpec, discover_workers

# How long `fleet dev up` waits for the workers to report ready before it goes on anyway.
READY_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class DevOptions:
    """What `fleet dev up` was asked to do."""

    data_dir: Path
    streams_file: Path
    rate: int
    simulate: bool
    duration_s: float | None
    status_every_s: float


def _launcher() -> ModuleType:
    try:
        import fleet_testing  # noqa: PLC0415 - dev-only dependency, loaded on demand
    except ImportError:
        raise UserError(
            "the fleet-testing package (server launcher) is not installed",
            fix="run `./fleetw dev up` from a checkout (it installs the whole workspace), "
            "or `uv sync` / `pip install -e libs/testing`",
        ) from None
    return fleet_testing


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _env_prefix(spec: WorkerSpec) -> str:
    return str(spec.settings_cls.model_config.get("env_prefix", ""))


async def worker_env(
    spec: WorkerSpec, fleet_env: Mapping[str, str], streams_file: Path
) -> dict[str, str]:
    """The environment of a worker process pointed at the launcher's servers."""
    prefix = _env_prefix(spec)
    env = {
        **os.environ,
        **fleet_env,
        f"{prefix}NATS_URL": fleet_env["FLEET_NATS_URL"],
        f"{prefix}STREAMS_FILE": str(streams_file),
        f"{prefix}HEALTH_PORT": str(_free_port()),
        f"{prefix}LOG_FORMAT": "json",
    }
    if spec.dev_setup is not None:
        env.update(await spec.dev_setup(fleet_env))
    return env


async def spawn_worker(
    name: str, env: Mapping[str, str], log_file: IO[bytes], partition: int | None = None
) -> asyncio.subprocess.Process:
    """Start ``fleet worker run NAME [--partition K]``, its output going to ``log_file``."""
    args = ["-m", "fleet_runtime.cli", "worker", "run", name]
    if partition is not None:
        args += ["--partition", str(partition)]
    return await asyncio.create_subprocess_exec(
        sys.executable, *args, env=dict(env), stdout=log_file, stderr=log_file
    )


def worker_partitions(topology: Topology, worker: str) -> list[int | None]:
    """The processes a worker runs as: ``[None]`` (one, unpartitioned) or ``0..n-1``.

    A worker whose consumer is partitioned runs one process per partition, each bound to
    its ``<durable>-p<k>`` consumer.
    """
    found = sorted({d.partition for d in topology.durables_for(worker) if d.partition is not None})
    return [*found] if found else [None]


@dataclass(frozen=True)
class DevWorker:
    """One worker process of `fleet dev up`."""

    proc: asyncio.subprocess.Process
    health_port: int
    log_path: Path


async def _start_workers(
    opts: DevOptions, topology: Topology, fleet_env: Mapping[str, str], logs: Path
) -> dict[str, DevWorker]:
    workers: dict[str, DevWorker] = {}
    for name, spec in discover_workers().items():
        if not spec.implemented:
            print(f"  worker {name:<20} not implemented yet: not started")
            continue
        for partition in worker_partitions(topology, name):
            label = name if partition is None else f"{name}-p{partition}"
            env = await worker_env(spec, fleet_env, opts.streams_file)
            log_path = logs / f"{label}.log"
            with log_path.open("ab") as log_file:
                proc = await spawn_worker(name, env, log_file, partition)
            port = int(env[f"{_env_prefix(spec)}HEALTH_PORT"])
            workers[label] = DevWorker(proc, port, log_path)
            print(f"  worker {label:<20} pid {proc.pid}, log {log_path}")
    return workers


def _readiness(port: int) -> str | None:
    """None when the worker's /readyz says ready, else why not."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2.0)
    try:
        conn.request("GET", "/readyz")
        response = conn.getresponse()
        if response.status == 200:
            return None
        return response.read().decode(errors="replace").strip() or f"HTTP {response.status}"
    except (OSError, http.client.HTTPException):
        return "starting (health endpoint not up yet)"
    finally:
        conn.close()


async def _wait_ready(workers: Mapping[str, DevWorker], stop: asyncio.Event) -> None:
    """Wait until every worker reports ready, exits, or ``READY_TIMEOUT_S`` passes.

    The simulator and ``--duration`` start after this, so a slow start-up (imports,
    migrations, a busy machine) neither eats the run time nor meets a stop half-way.
    """
    started = time.monotonic()
    waiting = dict(workers)
    why: dict[str, str] = {}
    while waiting and not stop.is_set():
        for label, worker in list(waiting.items()):
            code = worker.proc.returncode
            if code is not None:
                print(f"  worker {label} exited with {code} while starting: see {worker.log_path}")
                del waiting[label]
                continue
            reason = await asyncio.to_thread(_readiness, worker.health_port)
            if reason is None:
                del waiting[label]
            else:
                why[label] = reason
        if not waiting:
            break
        if time.monotonic() - started >= READY_TIMEOUT_S:
            for label in waiting:
                print(f"  worker {label} not ready after {READY_TIMEOUT_S:.0f}s: {why[label]}")
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.2)
    if not waiting:
        print(f"  workers ready {time.monotonic() - started:.1f}s after their start")


async def _stream_counts(js: JetStreamContext) -> dict[str, int]:
    counts: dict[str, int] = {}
    for name in ("BOTS", "TRADES", "MARKET", "OPS", "DLQ"):
        # A stream the file does not declare is simply not shown.
        with contextlib.suppress(nats.js.errors.NotFoundError):
            counts[name] = (await js.stream_info(name)).state.messages
    return counts


async def _lags(js: JetStreamContext, durables: list[tuple[str, str]]) -> dict[str, int]:
    lags: dict[str, int] = {}
    for stream, durable in durables:
        try:
            info = await js.consumer_info(stream, durable)
        except nats.js.errors.NotFoundError:
            lags[f"{durable}@{stream}"] = -1
            continue
        lags[f"{durable}@{stream}"] = (info.num_pending or 0) + (info.num_ack_pending or 0)
    return lags


async def run_dev(opts: DevOptions) -> None:
    """Run everything until Ctrl-C/SIGTERM (or ``duration_s``), then stop it all cleanly."""
    launcher = _launcher()
    topology = load_topology(opts.streams_file)
    opts.data_dir.mkdir(parents=True, exist_ok=True)
    logs = opts.data_dir / "logs"
    logs.mkdir(exist_ok=True)
    print(f"fleet dev: servers under {opts.data_dir} (kept between runs)")
    # NATS admits only the generated users (no harness user): each worker connects as
    # itself, topology apply as the admin, the simulator as the publisher.
    fleet: Any = launcher.Fleet(
        opts.data_dir, persistent=True, nats_anonymous=False, streams_file=opts.streams_file
    )
    stop = asyncio.Event()
    running = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        running.add_signal_handler(sig, stop.set)
    procs: dict[str, asyncio.subprocess.Process] = {}
    try:
        started = time.monotonic()
        await asyncio.to_thread(fleet.start)
        fleet_env: dict[str, str] = fleet.env()
        print(f"  servers up in {time.monotonic() - started:.1f}s:")
        for key in sorted(fleet_env):
            if key.endswith(("_URL", "_DSN", "_ENDPOINT", "_CREDS")):
                print(f"    {key}={fleet_env[key]}")
        url = fleet_env["FLEET_NATS_URL"]
        nc = await connect_nats(url, "fleet-dev", auth=env_auth(fleet_env, "admin"))
        js = nc.jetstream()
        plan = await apply(js, topology)
        publishing = await connect_nats(
            url, "fleet-dev-simulator", auth=env_auth(fleet_env, PUBLISHER)
        )
        print(f"  topology applied from {opts.streams_file}: {plan.summary()}")
        workers = await _start_workers(opts, topology, fleet_env, logs)
        procs = {label: worker.proc for label, worker in workers.items()}
        await _wait_ready(workers, stop)
        ready = {name for name, spec in discover_workers().items() if spec.implemented}
        durables = [(d.stream, d.name) for d in topology.durables() if d.spec.worker in ready]
        await _run_until_stopped(js, publishing.jetstream(), opts, stop, procs, durables)
        await publishing.drain()
        await nc.drain()
    finally:
        await _stop_workers(procs)
        await asyncio.to_thread(fleet.stop)
        for sig in (signal.SIGINT, signal.SIGTERM):
            running.remove_signal_handler(sig)
        print("fleet dev: stopped cleanly")


async def _run_until_stopped(
    js: JetStreamContext,
    publishing: JetStreamContext,
    opts: DevOptions,
    stop: asyncio.Event,
    procs: dict[str, asyncio.subprocess.Process],
    durables: list[tuple[str, str]],
) -> None:
    publisher = EventPublisher(publishing)
    # A new seed each run: bots of an earlier run (kept in the data dir) are not re-created.
    sim = MarketSimulator(seed=int(time.time()))
    published = 0
    if opts.simulate:
        published += len(await publisher.publish_many(sim.opening()))
        print(f"  simulator: {len(sim.symbols)} symbols, {sim.bots} bots, ~{opts.rate} events/s")
    print("  Ctrl-C stops everything cleanly.")
    deadline = None if opts.duration_s is None else time.monotonic() + opts.duration_s
    next_status = time.monotonic() + opts.status_every_s
    tick = 0.2
    while not stop.is_set():
        if deadline is not None and time.monotonic() >= deadline:
            break
        if opts.simulate:
            events = sim.step(max(1, int(opts.rate * tick)))
            published += len(await publisher.publish_many(events))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), tick)
        if time.monotonic() >= next_status:
            next_status += opts.status_every_s
            await _print_status(js, published, procs, durables)
    await _print_status(js, published, procs, durables)


async def _print_status(
    js: JetStreamContext,
    published: int,
    procs: dict[str, asyncio.subprocess.Process],
    durables: list[tuple[str, str]],
) -> None:
    counts = await _stream_counts(js)
    streams = "  ".join(f"{k} {v:,}" for k, v in counts.items())
    line = f"[{time.strftime('%H:%M:%S')}] published {published:,} | streams: {streams}"
    if durables:
        lags = await _lags(js, durables)
        line += " | lag: " + "  ".join(f"{k} {v:,}" for k, v in lags.items())
    dead = [n for n, p in procs.items() if p.returncode is not None]
    if dead:
        line += " | EXITED: " + ", ".join(f"{n} ({procs[n].returncode})" for n in dead)
    print(line, flush=True)


async def _stop_workers(procs: dict[str, asyncio.subprocess.Process]) -> None:
    for proc in procs.values():
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
    for name, proc in procs.items():
        try:
            code = await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            proc.kill()
            code = await proc.wait()
        print(f"  worker {name} exited with {code}")
