"""The bot-lifecycle process end to end: BOTS in, PostgreSQL and DLQ out, kill -9 between."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from nats.js.client import JetStreamContext

from fleet_events import Event
from fleet_runtime.deadletter import DeadLetter
from fleet_testing import Fleet
from fleet_testing.topologies import StreamsFile
from fleet_testing.waiting import wait_until
from fleet_testing.workerprocs import (
    finish_partitions,
    kill_leftovers,
    kill_one_partition_midway,
    start_worker,
    stream_loaded,
)

from .conftest import BotEvents as E

REPO = Path(__file__).resolve().parents[3]
BOTS = 300
REFUSED = 30


def topology_file(tmp_path: Path, *, partitions: int = 1) -> Path:
    """The repository's streams.yaml with bot-lifecycle's first redelivery after 2 s.

    A killed worker's unacked messages come back after backoff[0] (30 s as declared);
    the test shortens only that list to stay fast. With ``partitions`` > 1, BOTS is split
    by bot id (the last subject word) and bot-lifecycle binds per partition.
    """
    streams = StreamsFile(REPO / "streams.yaml").set_backoff(
        "bot-lifecycle", "BOTS", ["2s", "2s", "5s", "15s"]
    )
    if partitions > 1:
        streams.partition(
            "BOTS", subjects="bot.*.*", count=partitions, key=[2], workers=["bot-lifecycle"]
        )
    return streams.write(tmp_path / "streams.yaml")


def bot_lives() -> tuple[list[Event[Any]], set[str]]:
    """(what is published, ids of the events to refuse).

    Every bot lives its whole life (7 events); every 10th also gets a start after delete
    (refused) and a repeat of its update under a new event id (ignored).
    """
    published: list[Event[Any]] = []
    refused_ids: set[str] = set()
    for n in range(BOTS):
        b = f"bot-{n}"
        published += [
            E.created(b, 1, user=f"user-{n % 7}"),
            E.updated(b, 2, risk_level=3),
            E.deployed(b, 3, f"dep-{n}"),
            E.started(b, 4, f"dep-{n}"),
            E.stopped(b, 5, f"dep-{n}"),
            E.updated(b, 6, name=f"final {n}"),
            E.deleted(b, 7),
        ]
        if n % 10 == 0:
            late = E.started(b, 8, f"dep-{n}")
            refused_ids.add(str(late.id))
            published += [late, E.updated(b, 2, risk_level=9)]
    return published, refused_ids


def worker_env(fleet: Fleet, worker_dsn: str, streams: Path) -> dict[str, str]:
    return {
        **os.environ,
        **fleet.nats.env(),  # FLEET_NATS_CREDS: the worker connects as itself
        "BOT_LIFECYCLE_NATS_URL": fleet.nats.url,
        "BOT_LIFECYCLE_POSTGRES_DSN": worker_dsn,
        "BOT_LIFECYCLE_STREAMS_FILE": str(streams),
        "BOT_LIFECYCLE_BATCH_SIZE": "20",
        "BOT_LIFECYCLE_LOG_FORMAT": "json",
    }


async def dead_letters(js: JetStreamContext) -> list[DeadLetter]:
    sub = await js.pull_subscribe("dlq.>", durable=None, stream="DLQ")
    return [
        DeadLetter.from_message(msg.headers, msg.data)
        for msg in await sub.fetch(REFUSED + 5, timeout=5)
    ]


async def check_lifecycles(
    db: asyncpg.Connection, letters: list[DeadLetter], refused_ids: set[str]
) -> None:
    """Every bot's whole life applied once, in order; exactly the refused events dead-lettered."""
    assert {letter.event_id for letter in letters} == refused_ids
    assert len(letters) == REFUSED
    assert all(letter.error_class == "EventRejected" for letter in letters)
    assert all("is deleted: bot.started is not accepted" in x.error for x in letters)
    row = await db.fetchrow(
        "SELECT count(*) AS n, count(*) FILTER (WHERE status = 'deleted') AS deleted, "
        "min(version) AS vmin, max(version) AS vmax, sum(risk_level) AS risk "
        "FROM lifecycle.bots"
    )
    assert tuple(row.values()) == (BOTS, BOTS, 7, 7, 3 * BOTS)
    assert await db.fetchval("SELECT count(*) FROM lifecycle.users") == 7
    assert (
        await db.fetchval("SELECT count(*) FROM lifecycle.bot_deployments WHERE status = 'retired'")
        == BOTS
    )
    per_bot = await db.fetch(
        "SELECT bot_id, array_agg(version ORDER BY version) AS v "
        "FROM lifecycle.audit_log GROUP BY bot_id"
    )
    assert len(per_bot) == BOTS
    assert all(r["v"] == [1, 2, 3, 4, 5, 6, 7] for r in per_bot)


@pytest.mark.slow
async def test_worker_survives_kill_9_and_dead_letters_invalid_events(
    isolated_fleet: Fleet, lifecycle_dsns: tuple[str, str], tmp_path: Path
) -> None:
    owner, worker_dsn = lifecycle_dsns
    streams = topology_file(tmp_path)
    published, refused_ids = bot_lives()
    nc, js = await stream_loaded(isolated_fleet.nats.url, streams, published)
    env = worker_env(isolated_fleet, worker_dsn, streams)
    log = tmp_path / "worker.log"
    db = await asyncpg.connect(owner)

    async def audited() -> int:
        return int(await db.fetchval("SELECT count(*) FROM lifecycle.audit_log"))

    worker = start_worker("bot-lifecycle", env, log)
    try:
        await wait_until(lambda: _at_least(audited, 500), 60, "500 events applied")
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        assert await audited() < BOTS * 7, "the kill must land mid-stream"
        worker = start_worker("bot-lifecycle", env, log)

        async def drained() -> bool:
            info = await js.consumer_info("BOTS", "bot-lifecycle")
            return (
                await audited() == BOTS * 7 and info.num_pending == 0 and info.num_ack_pending == 0
            )

        await wait_until(drained, 90, "every event applied or dead-lettered, and acked")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
        letters = await dead_letters(js)
    finally:
        if worker.poll() is None:
            worker.kill()
        await nc.close()

    try:
        await check_lifecycles(db, letters, refused_ids)
    finally:
        await db.close()


@pytest.mark.slow
async def test_two_partitions_each_in_order_with_one_killed(
    isolated_fleet: Fleet, lifecycle_dsns: tuple[str, str], tmp_path: Path
) -> None:
    """BOTS split in two by bot: one process per partition, one of them kill -9'd.

    Users are shared across partitions (bots of one user hash to both): their rows are
    inserted by both processes at once, which must neither deadlock nor double them.
    """
    owner, worker_dsn = lifecycle_dsns
    streams = topology_file(tmp_path, partitions=2)
    published, refused_ids = bot_lives()
    nc, js = await stream_loaded(isolated_fleet.nats.url, streams, published)
    env = worker_env(isolated_fleet, worker_dsn, streams)
    db = await asyncpg.connect(owner)

    async def audited() -> int:
        return int(await db.fetchval("SELECT count(*) FROM lifecycle.audit_log"))

    workers = await kill_one_partition_midway(
        "bot-lifecycle", env, tmp_path, audited, kill_at=400, total=BOTS * 7
    )
    try:
        await finish_partitions(js, "BOTS", "bot-lifecycle", workers, audited, total=BOTS * 7)
        letters = await dead_letters(js)
    finally:
        kill_leftovers(workers)
        await nc.close()

    try:
        await check_lifecycles(db, letters, refused_ids)
        checkpoints = dict(await db.fetch("SELECT name, stream_seq FROM lifecycle.checkpoints"))
        assert set(checkpoints) == {"bot-lifecycle-p0", "bot-lifecycle-p1"}
        assert max(checkpoints.values()) == len(published)
    finally:
        await db.close()


async def _at_least(probe: Any, n: int) -> bool:
    return bool(await probe() >= n)
