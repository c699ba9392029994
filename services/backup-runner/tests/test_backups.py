"""Backups of each target against real servers (SeaweedFS, PostgreSQL, MongoDB wire, NATS),
checked by reading the objects back with independent tools (pg_restore, zstd, bson)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import zstandard
from bson import json_util
from nats.js.api import StreamConfig
from nats.js.client import JetStreamContext
from pydantic import SecretStr
from pymongo import MongoClient

from backup_runner.archive_chain import archived_ranges, chain_gaps
from backup_runner.errors import BackupRefused
from backup_runner.manifest import manifest_key, read_manifest
from backup_runner.objects import MinioObjectStore
from backup_runner.reader_role import READER_ROLE, ensure_reader_role
from backup_runner.runner import BackupRequest, BackupRunner
from backup_runner.settings import BackupRunnerSettings
from backup_runner.targets import mongodb as mongodb_target
from fleet_pgmigrate.roles import dsn_with
from fleet_testing.servers import MongoServer, PostgresServer
from fleet_testing.waiting import wait_until
from fleet_testing.workerprocs import settings_env


def request(target: str, scope: str | None = None) -> BackupRequest:
    return BackupRequest(f"b-{uuid.uuid4().hex[:12]}", target, scope, "test")


async def fleet_backup(
    settings: BackupRunnerSettings, *args: str
) -> subprocess.CompletedProcess[str]:
    """Run `fleet backup ARGS` with the settings in the environment."""
    env = {**os.environ, **settings_env(settings)}
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "fleet_runtime.cli", "backup", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def read_object(store: MinioObjectStore, key: str) -> bytes:
    return b"".join(store.get_chunks(key))


async def test_postgres_backup_dumps_each_schema_and_verifies(
    settings: BackupRunnerSettings,
    store: MinioObjectStore,
    js: JetStreamContext,
    postgres_server: PostgresServer,
    tmp_path: Path,
) -> None:
    wanted = request("postgres")
    done = await BackupRunner(settings, store, js).run(wanted)

    manifest = read_manifest(store, wanted.backup_id)
    assert [o.key.rsplit("/", 1)[1] for o in manifest.objects] == ["lifecycle.dump", "trading.dump"]
    assert manifest.positions["postgres.lifecycle.checkpoints"] == [
        {"consumer": "worker-0", "stream": "TRADES", "seq": 40}
    ]
    assert manifest.positions["postgres.trading.checkpoints"][0]["seq"] == 41
    assert manifest.tools["pg_dump"].startswith("pg_dump (PostgreSQL)")
    assert done.key == manifest_key(wanted.backup_id)
    # Each object is a custom-format archive that pg_restore reads: the table and its rows.
    dump = tmp_path / "trading.dump"
    dump.write_bytes(read_object(store, manifest.objects[1].key))
    restored = await asyncio.to_thread(
        subprocess.run,
        [str(postgres_server.tool("pg_restore")), "--list", str(dump)],
        capture_output=True,
        text=True,
        check=True,
    )
    listing = restored.stdout
    assert "TABLE DATA trading items" in listing
    assert "lifecycle" not in listing

    verified = await fleet_backup(settings, "verify", wanted.backup_id)
    assert verified.returncode == 0, verified.stderr
    assert "2 objects verified" in verified.stdout
    listed = await fleet_backup(settings, "list")
    assert wanted.backup_id in listed.stdout

    # One byte flipped in the second object: verify names it and fails.
    corrupt = bytearray(read_object(store, manifest.objects[1].key))
    corrupt[len(corrupt) // 2] ^= 0x01
    store.put_bytes(manifest.objects[1].key, bytes(corrupt))
    failed = await fleet_backup(settings, "verify", wanted.backup_id)
    assert failed.returncode == 1
    assert f"CORRUPT {manifest.objects[1].key}: sha256" in failed.stderr
    assert manifest.objects[0].key not in failed.stderr


async def test_mongodb_backup_keeps_decimal128_exact_and_indexes(
    settings: BackupRunnerSettings, store: MinioObjectStore, js: JetStreamContext
) -> None:
    database = settings.mongo_databases[0]
    wanted = request("mongodb", database)
    await BackupRunner(settings, store, js).run(wanted)

    manifest = read_manifest(store, wanted.backup_id)
    by_name = {o.key.rsplit("/", 1)[1]: o for o in manifest.objects}
    assert set(by_name) == {
        "prices.jsonl.zst", "prices.indexes.json",
        "checkpoints.jsonl.zst", "checkpoints.indexes.json",
    }  # fmt: skip
    lines = (
        zstandard.ZstdDecompressor()
        .decompressobj()
        .decompress(read_object(store, by_name["prices.jsonl.zst"].key))
    )
    docs = [json_util.loads(line) for line in lines.splitlines()]
    assert len(docs) == 50
    prices = {d["_id"]: d["price"].to_decimal() for d in docs}
    assert prices["p7"] == Decimal("7.000000000000000001")
    assert b'"$numberDecimal": "7.000000000000000001"' in lines
    indexes = json_util.loads(read_object(store, by_name["prices.indexes.json"].key))
    assert {ix["name"] for ix in indexes} == {"_id_", "by_price"}
    assert manifest.positions[f"mongodb.{database}.checkpoints"][0]["seq"] == 77
    verified = await fleet_backup(settings, "verify", wanted.backup_id)
    assert verified.returncode == 0, verified.stderr


async def test_mongodb_backup_reads_every_collection_at_one_moment(
    settings: BackupRunnerSettings,
    store: MinioObjectStore,
    js: JetStreamContext,
    mongo_server: MongoServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A batch committed while the backup runs (after the checkpoints were read, between
    two collections) is in none of the backed-up collections: the backup is the state at
    its checkpoints, so a restore catches up from them without missing or doubling it."""
    database = settings.mongo_databases[0]
    writer: MongoClient[Any] = MongoClient(mongo_server.url)
    real_lines = mongodb_target._lines
    committed: list[str] = []

    def lines_then_commit(client: Any, db: str, collection: str, session: Any) -> Any:
        yield from real_lines(client, db, collection, session)
        if collection == "checkpoints" and not committed:
            # The worker's next batch: effects and checkpoint in one transaction.
            with writer.start_session() as other, other.start_transaction():
                writer[db].prices.insert_one({"_id": "late", "price": 1}, session=other)
                writer[db].checkpoints.update_one(
                    {"_id": "TRADES/analytics-projector"}, {"$set": {"seq": 78}}, session=other
                )
            committed.append(collection)

    monkeypatch.setattr(mongodb_target, "_lines", lines_then_commit)
    wanted = request("mongodb", database)
    try:
        await BackupRunner(settings, store, js).run(wanted)
        assert committed == ["checkpoints"]
        assert writer[database].prices.count_documents({}) == 51
    finally:
        writer[database].prices.delete_one({"_id": "late"})
        writer[database].checkpoints.update_one(
            {"_id": "TRADES/analytics-projector"}, {"$set": {"seq": 77}}
        )
        writer.close()

    manifest = read_manifest(store, wanted.backup_id)
    by_name = {o.key.rsplit("/", 1)[1]: o for o in manifest.objects}

    def documents(name: str) -> list[dict[str, Any]]:
        raw = read_object(store, by_name[f"{name}.jsonl.zst"].key)
        lines = zstandard.ZstdDecompressor().decompressobj().decompress(raw)
        return [json_util.loads(line) for line in lines.splitlines()]

    # "checkpoints" sorts before "prices": the late batch landed between the two.
    assert [d["seq"] for d in documents("checkpoints")] == [77]
    assert len(documents("prices")) == 50
    assert "late" not in {d["_id"] for d in documents("prices")}
    assert manifest.positions[f"mongodb.{database}.checkpoints"][0]["seq"] == 77


async def test_stream_archive_continues_after_the_last_segment_and_reports_a_gap(
    settings: BackupRunnerSettings, store: MinioObjectStore, js: JetStreamContext
) -> None:
    stream = f"ARCH{uuid.uuid4().hex[:8].upper()}"
    subject = f"{stream.lower()}.>"
    await js.add_stream(StreamConfig(name=stream, subjects=[subject]))
    for i in range(25):
        await js.publish(f"{stream.lower()}.x", f'{{"n": {i}}}'.encode())
    archive = settings.model_copy(update={"archive_streams": [stream]})
    runner = BackupRunner(archive, store, js)

    first = await runner.run(request("stream"))
    assert [o.key.rsplit("/", 1)[1] for o in first.manifest.objects] == [
        f"{1:020d}-{10:020d}.jsonl.zst",
        f"{11:020d}-{20:020d}.jsonl.zst",
        f"{21:020d}-{25:020d}.jsonl.zst",
    ]
    assert first.manifest.gaps == []
    segment = (
        zstandard.ZstdDecompressor()
        .decompressobj()
        .decompress(read_object(store, first.manifest.objects[1].key))
    )
    records = [json.loads(line) for line in segment.splitlines()]
    assert [r["seq"] for r in records] == list(range(11, 21))
    assert json.loads(base64.b64decode(records[0]["data_b64"])) == {"n": 10}

    # Nothing new: no segment, same position.
    again = await runner.run(request("stream"))
    assert again.manifest.objects == []
    assert again.manifest.positions[f"stream.{stream}"]["archived_through"] == 25

    # A segment lost from the archive: the next run reports the hole and goes on.
    store.delete(first.manifest.objects[1].key)
    for i in range(3):
        await js.publish(f"{stream.lower()}.x", f'{{"n": {25 + i}}}'.encode())
    after = await runner.run(request("stream"))
    assert after.manifest.gaps == [f"{stream} 11-20 missing from the archive"]
    assert [o.key.rsplit("/", 1)[1] for o in after.manifest.objects] == [
        f"{26:020d}-{28:020d}.jsonl.zst"
    ]


async def test_unknown_scope_is_refused_before_anything_is_written(
    settings: BackupRunnerSettings, store: MinioObjectStore, js: JetStreamContext
) -> None:
    runner = BackupRunner(settings, store, js)
    with pytest.raises(BackupRefused, match="unknown schema 'billing'"):
        await runner.run(request("postgres", "billing"))
    with pytest.raises(BackupRefused, match="unknown target 'redis'"):
        await runner.run(request("redis"))
    store.ensure_bucket()
    assert store.keys("backups/") == []


async def test_postgres_backup_runs_as_a_role_that_reads_everything_and_writes_nothing(
    settings: BackupRunnerSettings,
    store: MinioObjectStore,
    js: JetStreamContext,
    postgres_server: PostgresServer,
    worker_database: str,
) -> None:
    await ensure_reader_role(postgres_server.dsn())
    reader = dsn_with(worker_database, user=READER_ROLE)
    as_reader = settings.model_copy(update={"postgres_dsn": SecretStr(reader)})
    wanted = request("postgres", "trading")

    done = await BackupRunner(as_reader, store, js).run(wanted)

    assert [o.key.rsplit("/", 1)[1] for o in done.manifest.objects] == ["trading.dump"]
    assert done.manifest.positions["postgres.trading.checkpoints"][0]["seq"] == 41
    conn = await asyncpg.connect(reader)
    try:
        assert await conn.fetchval("SELECT count(*) FROM trading.items") == 500
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("INSERT INTO trading.items VALUES (9999, 1)")
    finally:
        await conn.close()


_UPLOAD_FOREVER = """
import sys
from backup_runner.objects import ChunkReader, MinioObjectStore
store = MinioObjectStore(
    endpoint=sys.argv[1], access_key=sys.argv[2], secret_key=sys.argv[3], bucket=sys.argv[4],
    region="us-east-1", part_size=5 * 1024 * 1024,
)
def chunks():
    while True:
        yield b"x" * 65536
store.put_stream(sys.argv[5], ChunkReader(chunks()))
"""


async def test_parts_of_an_upload_killed_midway_are_aborted_by_the_next_run(
    settings: BackupRunnerSettings, store: MinioObjectStore, js: JetStreamContext
) -> None:
    wanted = request("postgres", "trading")
    key = f"backups/{wanted.backup_id}/postgres/trading.dump"
    store.ensure_bucket()
    uploader = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _UPLOAD_FOREVER, settings.s3_endpoint,
        settings.s3_access_key.get_secret_value(), settings.s3_secret_key.get_secret_value(),
        settings.s3_bucket, key,
    )  # fmt: skip
    try:

        def unfinished() -> list[str]:
            page = store._client._list_multipart_uploads(store.bucket, prefix="backups/")
            return [u.object_name for u in page.uploads]

        await wait_until(lambda: key in unfinished(), 30, "a multipart upload under way")
    finally:
        uploader.kill()
        await uploader.wait()
    assert unfinished() == [key]
    assert store.keys("backups/") == []

    done = await BackupRunner(settings, store, js).run(wanted)

    assert unfinished() == []
    assert [o.key for o in done.manifest.objects] == [key]


async def test_a_filtered_archive_keeps_only_its_subjects_and_its_chain_has_no_hole(
    settings: BackupRunnerSettings, store: MinioObjectStore, js: JetStreamContext
) -> None:
    stream = f"MKT{uuid.uuid4().hex[:8].upper()}"
    prefix = stream.lower()
    await js.add_stream(StreamConfig(name=stream, subjects=[f"{prefix}.>"]))
    for i in range(30):
        kind = "candle" if i % 3 == 0 else "tick"
        await js.publish(f"{prefix}.{kind}.BTC", f'{{"n": {i}}}'.encode())
    archive = settings.model_copy(
        update={
            "archive_streams": [stream],
            "archive_subjects": {stream: [f"{prefix}.candle.>"]},
            "segment_max_messages": 4,
        }
    )
    runner = BackupRunner(archive, store, js)
    first = await runner.run(request("stream"))
    for i in range(30, 36):
        kind = "candle" if i % 3 == 0 else "tick"
        await js.publish(f"{prefix}.{kind}.BTC", f'{{"n": {i}}}'.encode())
    second = await runner.run(request("stream"))

    ranges = archived_ranges(store, stream)
    assert chain_gaps(stream, ranges) == []
    assert first.manifest.gaps == []
    assert second.manifest.gaps == []
    # Candles are at sequences 1, 4, 7, ... 34: ten in the first run (4 + 4 + 2), two after.
    assert ranges == [(1, 10), (11, 22), (23, 28), (29, 34)]
    seqs = []
    for key in store.keys(f"streams/{stream}/"):
        text = zstandard.ZstdDecompressor().decompressobj().decompress(read_object(store, key))
        records = [json.loads(line) for line in text.splitlines()]
        assert all(".candle." in r["subject"] for r in records)
        seqs += [r["seq"] for r in records]
    assert seqs == list(range(1, 35, 3))
    assert second.manifest.positions[f"stream.{stream}"]["archived_through"] == 34
