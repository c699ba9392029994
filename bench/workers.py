"""A worker measured end to end: a real process, real servers, published → committed → acked.

Commits are observed from the server side only (the consumer's ack floor), so every
worker is measured the same way whatever its store: a worker acks after it commits.
"""

from __future__ import annotations

import asyncio
import bisect
import os
import signal
import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nats.js.client import JetStreamContext

from bench.workloads import Workload
from fleet_events import DLQ_STREAM
from fleet_runtime.dev import spawn_worker, worker_env
from fleet_runtime.workers import WorkerSpec


@dataclass
class WorkerRun:
    """What one worker run measured."""

    events_per_s: float
    latency_ms: dict[str, float]
    peak_rss_mb: float
    events: int
    cpu_us_per_event: dict[str, float]
    """CPU time (user + system) each process spent per event during the drain: the
    worker, and each server with its children (PostgreSQL serves a connection from a
    child process)."""
    machine_busy: float = float("nan")
    """Share of all the machine's CPU time that was busy during the drain, whoever used
    it (other processes on a shared machine included): near 1.0, the machine is saturated."""


def _peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


_TICKS_PER_S = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its live descendants (0 if gone)."""
    total = 0.0
    stats: dict[int, tuple[int, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name (field 2) may contain spaces: split after its closing paren.
        fields = text.rsplit(")", 1)[1].split()
        stats[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICKS_PER_S)
    family = {pid}
    grew = True
    while grew:
        grew = False
        for child, (parent, _) in stats.items():
            if parent in family and child not in family:
                family.add(child)
                grew = True
    for member in family:
        if member in stats:
            total += stats[member][1]
    return total


def _cpu_snapshot(pids: Mapping[str, list[int]]) -> dict[str, float]:
    return {name: sum(map(_cpu_seconds, group)) for name, group in pids.items()}


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine since boot, from /proc/stat."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    # user nice system idle iowait irq softirq steal (guest time is counted in user).
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    total = sum(fields[:8])
    return total - idle, total


def _busy_share(first: tuple[int, int], last: tuple[int, int]) -> float:
    total = last[1] - first[1]
    return (last[0] - first[0]) / total if total > 0 else float("nan")


async def _check_no_dead_letters(js: JetStreamContext) -> None:
    """A drain that dead-lettered events measured terms, not work: refuse its figure."""
    dead = (await js.stream_info(DLQ_STREAM)).state.messages
    if dead:
        raise RuntimeError(f"the worker dead-lettered {dead} benchmark events (see its log)")


async def _ack_floor(js: JetStreamContext, stream: str, durable: str) -> tuple[int, int, int]:
    info = await js.consumer_info(stream, durable)
    return info.ack_floor.consumer_seq, info.ack_floor.stream_seq, info.num_pending or 0


async def measure_worker(
    spec: WorkerSpec,
    fleet_env: Mapping[str, str],
    js: JetStreamContext,
    *,
    stream: str,
    durable: str,
    backlog: int,
    latency_load: Workload,
    latency_rate: int,
    streams_file: Path,
    log_path: Path,
    server_pids: Mapping[str, int],
) -> WorkerRun:
    """Drain ``backlog`` stored events, then offer ``latency_load`` at ``latency_rate``/s.

    ``server_pids`` names the servers whose CPU time per event is reported with the
    worker's (e.g. ``{"nats-server": pid, "postgres": pid}``).
    """
    env = await worker_env(spec, fleet_env, streams_file)
    with log_path.open("ab") as log_file:
        proc = await spawn_worker(spec.name, env, log_file)
        try:
            pids = {"worker": [proc.pid], **{k: [v] for k, v in server_pids.items()}}
            rate, cpu, busy = await _drain_rate(js, stream, [durable], backlog, [proc], pids)
            await _check_no_dead_letters(js)
            latency = await _latency(js, stream, durable, latency_load, latency_rate, proc)
            rss = _peak_rss_mb(proc.pid)
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(proc.wait(), 30)
                except TimeoutError:
                    proc.kill()
    return WorkerRun(
        events_per_s=rate,
        latency_ms=latency,
        peak_rss_mb=rss,
        events=backlog,
        cpu_us_per_event=cpu,
        machine_busy=busy,
    )


async def _drain_rate(
    js: JetStreamContext,
    stream: str,
    durables: list[str],
    backlog: int,
    procs: list[asyncio.subprocess.Process],
    pids: Mapping[str, list[int]],
) -> tuple[float, dict[str, float], float]:
    """Events/s from the first commit to the last, CPU µs per event over that span, and
    the share of the machine's CPU that was busy meanwhile.

    With several durables (partitions), an event counts once its partition acked it.
    """
    deadline = time.monotonic() + 600
    first: tuple[float, int] | None = None
    cpu_first: dict[str, float] = {}
    machine_first = (0, 0)
    while True:
        for proc in procs:
            if proc.returncode is not None:
                raise RuntimeError(f"worker exited with {proc.returncode} (see its log)")
        if time.monotonic() > deadline:
            raise RuntimeError("worker did not drain its backlog in 600 s")
        try:
            acked = 0
            for durable in durables:
                acked += (await _ack_floor(js, stream, durable))[0]
        except Exception:
            await asyncio.sleep(0.01)
            continue
        now = time.perf_counter()
        if first is None and acked > 0:
            # Timing starts at the first commit: process start-up is not throughput.
            first = (now, acked)
            cpu_first = _cpu_snapshot(pids)
            machine_first = _machine_ticks()
        if acked >= backlog:
            assert first is not None
            cpu_last = _cpu_snapshot(pids)
            events = max(acked - first[1], 1)
            cpu = {k: 1e6 * (cpu_last[k] - cpu_first[k]) / events for k in pids}
            busy = _busy_share(machine_first, _machine_ticks())
            return events / max(now - first[0], 1e-9), cpu, busy
        await asyncio.sleep(0.01)


async def _latency(
    js: JetStreamContext,
    stream: str,
    durable: str,
    load: Workload,
    rate: int,
    proc: asyncio.subprocess.Process,
) -> dict[str, float]:
    """Publish at ``rate``/s; a message's latency = first poll seeing it acked - publish time."""
    floors: list[tuple[float, int]] = []
    done = asyncio.Event()

    async def poll() -> None:
        while not done.is_set():
            _, stream_floor, _ = await _ack_floor(js, stream, durable)
            floors.append((time.perf_counter(), stream_floor))
            await asyncio.sleep(0.002)

    poller = asyncio.create_task(poll())
    sent: list[tuple[float, asyncio.Future[object]]] = []
    started = time.perf_counter()
    for i, (subject, data, msg_id) in enumerate(load.messages):
        target = started + i / rate
        delay = target - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        fut = await js.publish_async(subject, data, headers={"Nats-Msg-Id": msg_id})
        sent.append((time.perf_counter(), fut))
    seqs = [((await fut).seq, t) for t, fut in sent]  # type: ignore[attr-defined]
    last_seq = max(s for s, _ in seqs)
    deadline = time.monotonic() + 60
    while (not floors or floors[-1][1] < last_seq) and time.monotonic() < deadline:
        if proc.returncode is not None:
            break
        await asyncio.sleep(0.01)
    done.set()
    await poller
    floor_seqs = [f for _, f in floors]
    lat = []
    for seq, published_at in seqs:
        idx = bisect.bisect_left(floor_seqs, seq)
        if idx < len(floors):
            lat.append((floors[idx][0] - published_at) * 1000)
    lat.sort()
    if not lat:
        return {}
    return {
        "p50": statistics.median(lat),
        "p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))],
        "max": lat[-1],
        "rate": float(rate),
        "count": float(len(lat)),
    }


async def measure_partitioned(
    spec: WorkerSpec,
    fleet_env: Mapping[str, str],
    js: JetStreamContext,
    *,
    stream: str,
    durable: str,
    partitions: int,
    backlog: int,
    streams_file: Path,
    log_dir: Path,
    server_pids: Mapping[str, int],
) -> dict[str, Any]:
    """Drain ``backlog`` with one worker process per partition (the scale-out deployment)."""
    procs: list[asyncio.subprocess.Process] = []
    try:
        for k in range(partitions):
            env = await worker_env(spec, fleet_env, streams_file)
            with (log_dir / f"{spec.name}-p{k}.log").open("ab") as log_file:
                procs.append(await spawn_worker(spec.name, env, log_file, k))
        pids = {"worker": [p.pid for p in procs], **{k: [v] for k, v in server_pids.items()}}
        durables = [f"{durable}-p{k}" for k in range(partitions)]
        rate, cpu, busy = await _drain_rate(js, stream, durables, backlog, procs, pids)
        await _check_no_dead_letters(js)
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
    return {
        "events_per_s": rate,
        "partitions": partitions,
        "cpu_us_per_event": cpu,
        "machine_busy": busy,
    }
