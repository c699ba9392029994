"""Retention of the stream archive: the choice of segments (pure), and `fleet backup prune`
on real SeaweedFS, NATS and PostgreSQL: what goes, what a kept backup holds back, and a
chain that still verifies without a gap afterwards while a deleted segment is still one."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from nats.js.api import StreamConfig
from nats.js.client import JetStreamContext
from pydantic import SecretStr

from backup_runner.archive import S3StreamArchive
from backup_runner.archive_chain import archived_ranges, pruned_through, segment_key
from backup_runner.archive_retention import Pin, pins_of, plan_archive, plan_stream
from backup_runner.manifest import Manifest, list_manifests
from backup_runner.objects import MinioObjectStore
from backup_runner.runner import BackupRunner
from backup_runner.settings import BackupRunnerSettings
from fleet_runtime.replay import ReplayRefused
from fleet_runtime.replay.archive import archive_start

from .test_backups import fleet_backup, read_object, request

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=40)
CUTOFF = NOW - timedelta(days=30)


def segments(*ranges: tuple[int, int], at: datetime = OLD) -> list[tuple[int, int, str, datetime]]:
    return [(a, b, segment_key("S", a, b), at) for a, b in ranges]


def test_only_old_unneeded_segments_at_the_start_of_the_chain_go() -> None:
    chain = segments((1, 10), (11, 20), (21, 30), (31, 40))
    chain[1] = (11, 20, chain[1][2], NOW - timedelta(days=2))  # recent: it and all after stay
    plan = plan_stream("S", chain, 0, [], CUTOFF, 30)
    assert [(s.first, s.last, s.delete) for s in plan.segments] == [
        (1, 10, True),
        (11, 20, False),
        (21, 30, False),
        (31, 40, False),
    ]
    assert plan.segments[1].why == "written within the last 30 days"
    assert plan.segments[2].why.startswith("follows a segment that stays")
    assert plan.segments[3].why.startswith("the newest segment")
    assert plan.pruned_through == 10


def test_a_kept_backup_position_holds_back_every_segment_after_it() -> None:
    chain = segments((1, 10), (11, 20), (21, 30), (31, 40))
    pins = [Pin("S", 25, "backup pg-1 (x at 25)"), Pin("OTHER", 3, "backup pg-1 (y at 3)")]
    plan = plan_stream("S", chain, 0, pins, CUTOFF, 30)
    assert [s.delete for s in plan.segments] == [True, True, False, False]
    assert plan.segments[2].why == "needed by backup pg-1 (x at 25)"
    # A position at a segment's last sequence needs only what follows it.
    plan = plan_stream("S", chain, 0, [Pin("S", 20, "b")], CUTOFF, 30)
    assert [s.delete for s in plan.segments] == [True, True, False, False]
    # A checkpoint whose stream is unknown holds back every stream from its sequence.
    plan = plan_stream("S", chain, 0, [Pin(None, 5, "backup pg-2 (z at 5)")], CUTOFF, 30)
    assert [s.delete for s in plan.segments] == [False, False, False, False]


def test_pruning_never_passes_a_gap_and_finishes_an_interrupted_prune() -> None:
    # 21-30 missing; 1-10 left behind by a prune that recorded 10 and then stopped.
    chain = segments((1, 10), (11, 20), (31, 40), (41, 50), (51, 60))
    plan = plan_stream("S", chain, 10, [], CUTOFF, 30)
    assert [(s.first, s.delete) for s in plan.segments] == [
        (1, True),
        (11, True),
        (31, False),
        (41, False),
        (51, False),
    ]
    assert plan.segments[0].why.startswith("left by an interrupted prune")
    assert plan.segments[2].why == (
        "after a gap (S 21-30 missing from the archive): pruning never passes a hole"
    )
    assert plan.pruned_through == 20


def test_positions_come_from_every_kind_of_checkpoint_row() -> None:
    manifest = Manifest(
        backup_id="pg-1",
        target="postgres",
        scope=None,
        requested_by="t",
        started_at=NOW,
        finished_at=NOW,
        objects=[],
        positions={
            # PostgreSQL workers: the durable's name only (streams.yaml gives its stream).
            "postgres.trading.checkpoints": [{"name": "trade-recorder-p1", "stream_seq": 70}],
            "postgres.lifecycle.checkpoints": [{"name": "mystery", "stream_seq": 9}],
            # analytics-projector: "<STREAM>/<durable>".
            "mongodb.a.checkpoints": [{"_id": "MARKET/analytics-projector", "stream_seq": 12}],
            "stream.TRADES": {"archived_through": 5},
        },
    )
    stream_backup = manifest.model_copy(
        update={"backup_id": "s-1", "target": "stream", "positions": {}}
    )
    pins = pins_of([manifest, stream_backup], {"trade-recorder-p1": {"TRADES"}})
    assert {(p.stream, p.seq) for p in pins} == {("TRADES", 70), (None, 9), ("MARKET", 12)}
    assert all("backup pg-1" in p.why for p in pins)


# -- on SeaweedFS ---------------------------------------------------------------------------


async def _archived_stream(
    settings: BackupRunnerSettings, store: MinioObjectStore, js: JetStreamContext, count: int
) -> tuple[str, BackupRunner]:
    """A new stream with ``count`` messages, archived in segments of 10."""
    stream = f"RET{uuid.uuid4().hex[:8].upper()}"
    await js.add_stream(StreamConfig(name=stream, subjects=[f"{stream.lower()}.>"]))
    for i in range(count):
        await js.publish(f"{stream.lower()}.x", f'{{"n": {i}}}'.encode())
    runner = BackupRunner(settings.model_copy(update={"archive_streams": [stream]}), store, js)
    done = await runner.run(request("stream"))
    assert done.manifest.gaps == []
    return stream, runner


async def _position(dsn: str, schema: str, stream: str, seq: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"UPDATE {schema}.checkpoints SET stream = $1, seq = $2", stream, seq)
    finally:
        await conn.close()


async def test_prune_keeps_what_a_kept_backup_needs_and_the_archive_still_has_no_gap(
    settings: BackupRunnerSettings,
    store: MinioObjectStore,
    js: JetStreamContext,
    worker_database: str,
) -> None:
    stream, runner = await _archived_stream(settings, store, js, 45)
    first_backup = list_manifests(store)[0]
    assert archived_ranges(store, stream) == [(1, 10), (11, 20), (21, 30), (31, 40), (41, 45)]
    # A PostgreSQL backup whose stores are at 25 and 33 of the stream: 26 on must stay.
    await _position(worker_database, "trading", stream, 25)
    await _position(worker_database, "lifecycle", stream, 33)
    pg = await runner.run(request("postgres"))
    policy = settings.model_copy(update={"archive_keep_days": 0})

    dry = await fleet_backup(policy, "prune", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    assert (
        f"would prune  {stream} 1-20 (2 segments)  "
        "(written more than 0 days ago, no kept backup needs it)"
    ) in lines
    assert (
        f"keep  {stream} 21-40 (2 segments)  (needed by backup {pg.manifest.backup_id} "
        "(postgres.trading.checkpoints worker-1 at 25))"
    ) in lines
    assert f"keep  {stream} 41-45  (the newest segment: archiving continues from it)" in lines
    assert "0 backups would be pruned, 2 kept; 2 archived segments would be pruned" in dry.stdout
    assert len(archived_ranges(store, stream)) == 5, "a dry run deletes nothing"
    assert pruned_through(store, stream) == 0

    done = await fleet_backup(policy, "prune")
    assert done.returncode == 0, done.stderr
    assert f"prune  {stream} 1-20 (2 segments)" in done.stdout
    assert archived_ranges(store, stream) == [(21, 30), (31, 40), (41, 45)]
    assert pruned_through(store, stream) == 20
    assert sorted(m.backup_id for m in list_manifests(store)) == sorted(
        [first_backup.backup_id, pg.manifest.backup_id]
    )

    # The chain starts at 21 now: no gap for the archive, the next run or the reader.
    for i in range(3):
        await js.publish(f"{stream.lower()}.x", f'{{"n": {45 + i}}}'.encode())
    after = await runner.run(request("stream"))
    assert after.manifest.gaps == []
    assert [o.key for o in after.manifest.objects] == [segment_key(stream, 46, 48)]
    extent = await S3StreamArchive(settings, store).extent(stream)
    assert (extent.first, extent.last, list(extent.gaps), extent.pruned_through) == (
        21,
        48,
        [],
        20,
    )
    # The first stream backup lists segments retention removed: not a corruption.
    verified = await fleet_backup(settings, "verify", first_backup.backup_id)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"2 segments pruned by archive retention ({stream} through 20)" in verified.stdout
    assert "3 objects verified" in verified.stdout

    # A rebuild from the first event is refused, naming the earliest sequence left.
    with pytest.raises(ReplayRefused) as refused:
        archive_start(stream, f"{stream.lower()}.>", extent, first=30)
    assert str(refused.value) == (
        f"the archive cannot rebuild {stream} from its first event: retention pruned it "
        "through sequence 20, its earliest available sequence is 21 (the stream starts at 30)"
    )
    assert archive_start(stream, f"{stream.lower()}.>", extent, first=1) == 0

    # Nothing more goes while the backup needs it: a second prune changes nothing.
    again = await fleet_backup(policy, "prune")
    assert again.returncode == 0, again.stderr
    assert "0 archived segments pruned, 4 kept" in again.stdout
    assert archived_ranges(store, stream)[0] == (21, 30)


async def test_a_deleted_segment_after_a_prune_is_still_a_gap(
    settings: BackupRunnerSettings, store: MinioObjectStore, js: JetStreamContext
) -> None:
    stream, runner = await _archived_stream(settings, store, js, 45)
    done = await fleet_backup(settings.model_copy(update={"archive_keep_days": 0}), "prune")
    assert done.returncode == 0, done.stderr
    # No PostgreSQL or MongoDB backup: everything but the newest segment goes.
    assert archived_ranges(store, stream) == [(41, 45)]
    assert pruned_through(store, stream) == 40
    for i in range(25):
        await js.publish(f"{stream.lower()}.x", f'{{"n": {45 + i}}}'.encode())
    grown = await runner.run(request("stream"))
    assert grown.manifest.gaps == []
    assert archived_ranges(store, stream) == [(41, 45), (46, 55), (56, 65), (66, 70)]
    reader = S3StreamArchive(settings, store)

    # The first segment after the pruned point deleted by hand: a gap, not a pruned prefix.
    first = segment_key(stream, 41, 45)
    saved = read_object(store, first)
    store.delete(first)
    assert list((await reader.extent(stream)).gaps) == [f"{stream} 41-45 missing from the archive"]
    holed = await runner.run(request("stream"))
    assert holed.manifest.gaps == [f"{stream} 41-45 missing from the archive"]
    store.put_bytes(first, saved)

    # A segment in the middle deleted: a gap; prune keeps everything from the hole on.
    store.delete(segment_key(stream, 46, 55))
    extent = await reader.extent(stream)
    assert list(extent.gaps) == [f"{stream} 46-55 missing from the archive"]
    with pytest.raises(ReplayRefused, match=f"{stream} 46-55 missing from the archive"):
        archive_start(stream, f"{stream.lower()}.>", extent, first=60)
    pruned = await fleet_backup(settings.model_copy(update={"archive_keep_days": 0}), "prune")
    assert pruned.returncode == 0, pruned.stderr
    assert f"prune  {stream} 41-45  (written more than 0 days ago" in pruned.stdout
    assert (
        f"keep  {stream} 56-65  (after a gap ({stream} 46-55 missing from the archive): "
        "pruning never passes a hole)"
    ) in pruned.stdout
    assert archived_ranges(store, stream) == [(56, 65), (66, 70)]
    assert list((await reader.extent(stream)).gaps) == [f"{stream} 46-55 missing from the archive"]


async def test_segments_inside_the_retention_window_stay(
    settings: BackupRunnerSettings, store: MinioObjectStore, js: JetStreamContext
) -> None:
    stream, _ = await _archived_stream(settings, store, js, 25)
    dry = await fleet_backup(settings, "prune", "--dry-run")  # 30 days, the default
    assert dry.returncode == 0, dry.stderr
    assert f"keep  {stream} 1-20 (2 segments)  (written within the last 30 days)" in dry.stdout
    # The same archive 31 days from now: all but the newest segment would go.
    later = datetime.now(UTC) + timedelta(days=31)
    plans = plan_archive(store, list_manifests(store), {}, keep_days=30, now=later)
    (plan,) = [p for p in plans if p.stream == stream]
    assert [(s.first, s.delete) for s in plan.segments] == [(1, True), (11, True), (21, False)]
    assert archived_ranges(store, stream) == [(1, 10), (11, 20), (21, 25)]


async def test_a_restore_says_when_the_archive_no_longer_reaches_its_positions(
    settings: BackupRunnerSettings,
    store: MinioObjectStore,
    js: JetStreamContext,
    worker_database: str,
    empty_database: str,
) -> None:
    stream, runner = await _archived_stream(settings, store, js, 45)
    pruned = await fleet_backup(settings.model_copy(update={"archive_keep_days": 0}), "prune")
    assert pruned.returncode == 0, pruned.stderr
    assert pruned_through(store, stream) == 40
    # A backup made after the prune whose stores lag behind it (trading at 25), and one
    # position the archive still covers (lifecycle at 43).
    await _position(worker_database, "trading", stream, 25)
    await _position(worker_database, "lifecycle", stream, 43)
    pg = await runner.run(request("postgres"))

    restored = await fleet_backup(
        settings, "restore", pg.manifest.backup_id, "--into", empty_database
    )
    assert restored.returncode == 0, restored.stderr
    notes = [line for line in restored.stderr.splitlines() if "the archive of" in line]
    assert notes == [
        f"note: the archive of {stream} starts at 41 (retention pruned it): catching up "
        f"postgres.trading.checkpoints worker-1 at 25 needs {stream} 26-40 from the stream itself"
    ]


async def test_an_encrypted_archive_is_pruned_and_read_on_from_its_new_start(
    settings: BackupRunnerSettings, store: MinioObjectStore, js: JetStreamContext
) -> None:
    key = SecretStr(base64.b64encode(bytes(range(32))).decode())
    sealed = settings.model_copy(update={"encryption_key": key})
    stream, runner = await _archived_stream(sealed, store, js, 25)
    done = await fleet_backup(sealed.model_copy(update={"archive_keep_days": 0}), "prune")
    assert done.returncode == 0, done.stderr
    assert archived_ranges(store, stream) == [(21, 25)]
    # The marker stays readable without the key; the next run and the reader go on from it.
    assert pruned_through(store, stream) == 20
    for i in range(5):
        await js.publish(f"{stream.lower()}.x", f'{{"n": {25 + i}}}'.encode())
    after = await runner.run(request("stream"))
    assert after.manifest.gaps == []
    reader = S3StreamArchive(sealed, store)
    assert (await reader.extent(stream)).first == 21
    seqs = [m.seq async for chunk in reader.messages(stream, 30) for m in chunk]
    assert seqs == list(range(21, 31))

    # A segment removed while a replay reads (a prune meanwhile): one line, no traceback.
    chunks = reader.messages(stream, 30)
    assert [m.seq for m in await anext(chunks)] == list(range(21, 26))
    store.delete(segment_key(stream, 26, 30))
    with pytest.raises(ReplayRefused, match="was removed while the replay read the archive"):
        await anext(chunks)
