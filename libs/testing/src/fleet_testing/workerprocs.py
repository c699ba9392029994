"""Worker processes for end-to-end tests: started as `fleet worker run`, killable, drained."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import nats
from nats.aio.client import Client as NATS
from nats.js.client import JetStreamContext
from pydantic import SecretStr
from pydantic_settings import BaseSettings

from fleet_events import Event
from fleet_runtime.publisher import EventPublisher
from fleet_runtime.topology import apply, load_topology
from fleet_testing.waiting import wait_until


def start_worker(
    name: str, env: Mapping[str, str], log: Path, partition: int | None = None
) -> subprocess.Popen[bytes]:
    """Run ``fleet worker run NAME [--partition K]`` with its output appended to ``log``."""
    args = [sys.executable, "-m", "fleet_runtime.cli", "worker", "run", name]
    if partition is not None:
        args += ["--partition", str(partition)]
    with log.open("ab") as out:
        return subprocess.Popen(args, env=dict(env), stdout=out, stderr=out)


async def partitions_drained(
    js: JetStreamContext, stream: str, durable: str, partitions: int
) -> bool:
    """Whether every partition durable (``<durable>-p<k>``) has nothing pending or unacked."""
    for k in range(partitions):
        info = await js.consumer_info(stream, f"{durable}-p{k}")
        if info.num_pending or info.num_ack_pending:
            return False
    return True


async def partitions_used(
    js: JetStreamContext, stream: str, durable: str, partitions: int
) -> list[int]:
    """How many messages each partition durable delivered (all > 0: every one was used)."""
    return [
        (await js.consumer_info(stream, f"{durable}-p{k}")).delivered.consumer_seq
        for k in range(partitions)
    ]


async def stream_loaded(
    nats_url: str, streams_file: Path, events: Sequence[Event[Any]]
) -> tuple[NATS, JetStreamContext]:
    """Connect, apply ``streams_file`` and publish ``events``; the caller closes the client."""
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    await apply(js, load_topology(streams_file))
    await EventPublisher(js).publish_many(events)
    return nc, js


async def kill_one_partition_midway(
    name: str,
    env: Mapping[str, str],
    log_dir: Path,
    progress: Callable[[], Awaitable[int]],
    *,
    kill_at: int,
    total: int,
) -> list[subprocess.Popen[bytes]]:
    """Run partitions 0 and 1; once ``progress()`` reaches ``kill_at``, kill -9 partition 0
    (asserting it died mid-stream, below ``total``) and start it again. Returns both."""
    workers = [start_worker(name, env, log_dir / f"p{k}.log", partition=k) for k in (0, 1)]
    try:

        async def reached() -> bool:
            return await progress() >= kill_at

        await wait_until(reached, 60, f"{kill_at} events applied")
        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait(timeout=10)
        assert await progress() < total, "the kill must land mid-stream"
        workers[0] = start_worker(name, env, log_dir / "p0.log", partition=0)
    except BaseException:
        kill_leftovers(workers)
        raise
    return workers


async def finish_partitions(
    js: JetStreamContext,
    stream: str,
    name: str,
    workers: Sequence[subprocess.Popen[bytes]],
    progress: Callable[[], Awaitable[int]],
    *,
    total: int,
) -> None:
    """Wait until both partition durables are drained with ``progress() == total``, stop the
    processes with SIGTERM (each must exit 0) and check that both partitions were used."""

    async def drained() -> bool:
        if not await partitions_drained(js, stream, name, len(workers)):
            return False
        return await progress() == total

    await wait_until(drained, 90, "every partition applied (or dead-lettered) and acked")
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
    assert [w.wait(timeout=30) for w in workers] == [0] * len(workers)
    assert all(await partitions_used(js, stream, name, len(workers)))


def kill_leftovers(workers: Sequence[subprocess.Popen[bytes]]) -> None:
    """Kill whichever of ``workers`` still runs (test clean-up)."""
    for worker in workers:
        if worker.poll() is None:
            worker.kill()


def settings_env(settings: BaseSettings) -> dict[str, str]:
    """The environment variables (the settings class's prefix) that give a process
    ``settings``: secrets revealed, lists and mappings as JSON, unset values left out."""
    prefix = str(settings.model_config.get("env_prefix", ""))
    env = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        env[f"{prefix}{name.upper()}"] = (
            json.dumps(raw) if isinstance(raw, list | dict) else str(raw)
        )
    return env
