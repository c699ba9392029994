"""backup-runner in the fault suite: backups taken under load and faults restore exactly.

The ``backup`` scenario asks backup-runner for a PostgreSQL, a MongoDB and a stream
backup while the publisher runs and the projecting workers are killed. After the drain,
each database backup is restored with the operator's command (`fleet backup restore`)
into a new database on the same server, and the restored store is reconciled against the
acked events up to the positions its own restored checkpoints name: a backup is exact
when it holds every effect of the events before its checkpoints and nothing after them
(a restored store then catches up from those checkpoints without losing or doubling).
The stream backup must have no gap.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import asyncpg
import nats
from pymongo import AsyncMongoClient

from fleet_events import BackupRequested, BackupTarget, new_event
from fleet_runtime.publisher import EventPublisher
from fleet_testing.chaos.publisher import Acked
from fleet_testing.chaos.reconcile import StoreCheck, check_bots, check_trades
from fleet_testing.chaos.reconcile_analytics import check_analytics
from fleet_testing.chaos.rig import Rig
from fleet_testing.servers import PostgresServer

if TYPE_CHECKING:
    from fleet_testing.chaos.scenarios import FaultLog, Sizes

WORKER = "backup-runner"
TARGETS = ("postgres", "mongodb", "stream")
PROJECTIONS = ("trade-recorder", "bot-lifecycle", "analytics-projector")
"""The workers whose stores the backups copy: killed while the backups run."""
OPS = "OPS"
FINISH_TIMEOUT_S = 300.0
RESTORE_TIMEOUT_S = 300.0

Positions = dict[str, int]
"""Applied stream sequence per checkpoint name (``STREAM/name`` for MongoDB)."""


@dataclass(frozen=True)
class Outcome:
    """How one requested backup ended: ``verb`` is ``completed`` or ``failed``."""

    backup_id: str
    target: str
    verb: str
    data: Mapping[str, Any]


async def request_backups(rig: Rig, tag: str) -> dict[str, str]:
    """Ask backup-runner for one backup of each target; their ids by target."""
    publisher = EventPublisher(rig.js)
    ids: dict[str, str] = {}
    for target in TARGETS:
        backup_id = f"{tag}-{target}-{uuid.uuid4().hex[:8]}"
        request = BackupRequested(
            backup_id=backup_id, target=BackupTarget(target), requested_by="fleet-chaos"
        )
        await publisher.publish(new_event(request, source="fleet-chaos"))
        ids[target] = backup_id
    return ids


async def backup_under_faults(rig: Rig, sizes: Sizes, rng: random.Random, log: FaultLog) -> None:
    """Ask for a backup of every target, then kill -9 each projecting worker once while
    they run (the load goes on); wait until every backup finished."""
    if WORKER not in rig.worker_names:
        raise AssertionError(f"the backup scenario needs {WORKER} in the rig")
    log.backups = await request_backups(rig, f"chaos{rng.randrange(10**6)}")
    killed = [w for w in PROJECTIONS if w in rig.worker_names]
    for name in rng.sample(killed, k=len(killed)):
        await asyncio.sleep(rng.uniform(0.2, 1.5))
        label = rng.choice(rig.labels(name))
        await rig.kill_worker(label)
        rig.restart_worker(label)
    await wait_finished(rig, log.backups)
    log.note(f"backups of {', '.join(TARGETS)} while kill -9 x1 each: {', '.join(killed)}")
    log.heal()


async def outcome(rig: Rig, target: str, backup_id: str) -> Outcome | None:
    """The completed (or else failed) event of ``backup_id``; None while it runs."""
    for verb in ("completed", "failed"):
        try:
            msg = await rig.js.get_last_msg(OPS, f"ops.backup.{verb}.{backup_id}")
        except nats.js.errors.NotFoundError:
            continue
        data = json.loads(msg.data or b"{}")["data"]
        if verb == "failed" and data.get("retrying"):
            continue  # still in hand: it is tried again
        return Outcome(backup_id, target, verb, data)
    return None


async def wait_finished(rig: Rig, ids: Mapping[str, str]) -> list[Outcome]:
    """Until every requested backup completed or failed for good (bounded)."""
    deadline = time.monotonic() + FINISH_TIMEOUT_S
    while True:
        found = [await outcome(rig, target, backup_id) for target, backup_id in ids.items()]
        done = [o for o in found if o is not None]
        if len(done) == len(ids):
            return done
        if time.monotonic() > deadline:
            missing = sorted(set(ids.values()) - {o.backup_id for o in done})
            raise AssertionError(f"backups not finished within {FINISH_TIMEOUT_S:.0f}s: {missing}")
        await asyncio.sleep(0.5)


async def check_backups(
    rig: Rig, ids: Mapping[str, str], tag: str, bot_prefix: str, acks: list[Acked]
) -> list[StoreCheck]:
    """Restore each database backup and reconcile it at its own checkpoints; the stream
    backup must be complete (no gap)."""
    outcomes = {o.target: o for o in await wait_finished(rig, ids)}
    checks: list[StoreCheck] = []
    failed = [o for o in outcomes.values() if o.verb != "completed"]
    for o in failed:
        checks.append(
            _broken(f"{o.target} backup", f"{o.backup_id} failed: {o.data.get('reason')}")
        )
    stream = outcomes["stream"]
    if stream.verb == "completed" and stream.data.get("gaps"):
        checks.append(_broken("stream backup", f"gaps in the archive: {stream.data['gaps']}"))
    if outcomes["postgres"].verb == "completed":
        checks += await _restored_postgres(rig, ids["postgres"], tag, bot_prefix, acks)
    if outcomes["mongodb"].verb == "completed" and "analytics-projector" in rig.worker_names:
        checks.append(await _restored_mongodb(rig, ids["mongodb"], tag, bot_prefix, acks))
    return checks


async def _restored_postgres(
    rig: Rig, backup_id: str, tag: str, bot_prefix: str, acks: list[Acked]
) -> list[StoreCheck]:
    server = rig.fleet.server("postgres")
    assert isinstance(server, PostgresServer)
    database = f"restored_{tag}"
    await asyncio.to_thread(server.drop_database, database)
    dsn = await asyncio.to_thread(server.create_database, database)
    problem = await _restore(rig, backup_id, "--into", dsn)
    if problem is not None:
        return [_broken("restored postgres", problem)]
    trades_at = await _pg_positions(dsn, "trading")
    bots_at = await _pg_positions(dsn, "lifecycle")
    partition = await _partitions(rig, acks)
    trades = await check_trades(
        dsn,
        bot_prefix,
        _before(acks, "TRADES", lambda a: trades_at[_name(trades_at, partition(a))]),
    )
    bots = await check_bots(dsn, bot_prefix, _before(acks, "BOTS", lambda a: _only(bots_at)))
    return [_renamed(trades, "restored trades"), _renamed(bots, "restored bots")]


async def _restored_mongodb(
    rig: Rig, backup_id: str, tag: str, bot_prefix: str, acks: list[Acked]
) -> StoreCheck:
    url = rig.env_value("analytics-projector", "MONGO_URL")
    database = f"restored_{tag}"
    problem = await _restore(rig, backup_id, "--into", url, "--database", database)
    if problem is not None:
        return _broken("restored analytics", problem)
    at = await _mongo_positions(url, database)
    upto = {name.split("/", 1)[0]: seq for name, seq in at.items()}  # STREAM/consumer
    kept = [
        a
        for stream in ("TRADES", "BOTS")
        for a in _before(acks, stream, lambda a: upto.get(a.stream, 0))
    ]
    check = await check_analytics(url, database, bot_prefix, sorted(kept, key=lambda a: a.seq))
    return _renamed(check, "restored analytics")


async def _restore(rig: Rig, backup_id: str, *args: str) -> str | None:
    """Run `fleet backup restore` as an operator would; the problem, or None."""
    env = next(w.env for w in rig.workers.values() if w.name == WORKER)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fleet_runtime.cli",
        "backup",
        "restore",
        backup_id,
        *args,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), RESTORE_TIMEOUT_S)
    if proc.returncode == 0:
        return None
    tail = (err or out).decode(errors="replace").strip().splitlines()[-3:]
    return f"restore of {backup_id} exited {proc.returncode}: {' | '.join(tail)}"


async def _pg_positions(dsn: str, schema: str) -> Positions:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(f"SELECT name, stream_seq FROM {schema}.checkpoints")  # noqa: S608
    finally:
        await conn.close()
    return {str(r["name"]): int(r["stream_seq"]) for r in rows}


async def _mongo_positions(url: str, database: str) -> Positions:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url)
    try:
        docs = await client[database].checkpoints.find({}).to_list(None)
    finally:
        await client.close()
    return {str(d["_id"]): int(d["stream_seq"]) for d in docs}


async def _partitions(rig: Rig, acks: list[Acked]) -> Callable[[Acked], int | None]:
    """Each stored TRADES message's partition, read from the subject the stream stored
    (the stream's partition transform appends it: ``trade.….<k>``)."""
    found: dict[int, int | None] = {}
    for ack in acks:
        if ack.stream != "TRADES" or ack.seq in found:
            continue
        msg = await rig.js.get_msg("TRADES", ack.seq)
        token = (msg.subject or "").rsplit(".", 1)[-1]
        found[ack.seq] = int(token) if token.isdigit() else None
    return lambda a: found.get(a.seq)


def _name(positions: Positions, partition: int | None) -> str:
    """The checkpoint of ``partition`` (the one checkpoint when unpartitioned)."""
    if partition is None:
        return _only_name(positions)
    return next(n for n in positions if n.endswith(f"-p{partition}"))


def _only_name(positions: Positions) -> str:
    if len(positions) != 1:
        raise AssertionError(f"expected one checkpoint, found {sorted(positions)}")
    return next(iter(positions))


def _only(positions: Positions) -> int:
    return positions[_only_name(positions)]


def _before(acks: list[Acked], stream: str, upto: Callable[[Acked], int]) -> list[Acked]:
    """The acks of ``stream`` at or before the position that applies to each."""
    return [a for a in acks if a.stream == stream and a.seq <= upto(a)]


def _renamed(check: StoreCheck, store: str) -> StoreCheck:
    return StoreCheck(
        store,
        check.expected,
        check.applied,
        check.lost,
        check.doubled,
        check.mismatched,
        tuple(f"{store}: {n}" for n in check.notes),
    )


def _broken(store: str, note: str) -> StoreCheck:
    """A backup that could not be checked at all counts as one mismatch."""
    return StoreCheck(store, 1, 0, 0, 0, 1, (note,))
