"""Fixtures: a bucket on the launcher's SeaweedFS, a PostgreSQL database with worker
schemas, a MongoDB database with Decimal128 documents, and the settings that point at them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import asyncpg
import nats
import pytest
from bson import Decimal128
from nats.js.client import JetStreamContext
from pymongo import ASCENDING, MongoClient

from backup_runner.app import object_store
from backup_runner.objects import MinioObjectStore
from backup_runner.settings import BackupRunnerSettings
from fleet_testing.servers import MongoServer, NatsServer, PostgresServer, S3Server

SCHEMAS = ("lifecycle", "trading")


def settings_for(**values: Any) -> BackupRunnerSettings:
    """Settings built from ``values`` only (nothing read from the environment)."""
    return BackupRunnerSettings(**values)


def s3_settings(s3: S3Server, bucket: str) -> dict[str, Any]:
    """The S3 part of the settings for ``s3``."""
    env = s3.env()
    return {
        "s3_endpoint": s3.endpoint,
        "s3_access_key": env["FLEET_S3_ACCESS_KEY"],
        "s3_secret_key": env["FLEET_S3_SECRET_KEY"],
        "s3_region": env["FLEET_S3_REGION"],
        "s3_bucket": bucket,
    }


@pytest.fixture
def bucket() -> str:
    """A bucket name of its own for the test."""
    return f"backups-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def worker_database(postgres_server: PostgresServer) -> AsyncIterator[str]:
    """A database with the worker schemas, a few rows (NUMERIC included) and checkpoints."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    dsn = postgres_server.create_database(name)
    conn = await asyncpg.connect(dsn)
    try:
        for n, schema in enumerate(SCHEMAS):
            await conn.execute(f"""
                CREATE SCHEMA {schema};
                CREATE TABLE {schema}.checkpoints (
                    consumer text PRIMARY KEY, stream text NOT NULL, seq bigint NOT NULL);
                CREATE TABLE {schema}.items (id int PRIMARY KEY, price numeric NOT NULL);
                INSERT INTO {schema}.checkpoints VALUES ('worker-{n}', 'TRADES', {40 + n});
                INSERT INTO {schema}.items
                    SELECT g, g * 1.00000001 FROM generate_series(1, 500) g;
            """)
    finally:
        await conn.close()
    try:
        yield dsn
    finally:
        postgres_server.drop_database(name)


@pytest.fixture
def mongo_database(mongo_server: MongoServer) -> Iterator[str]:
    """A database with Decimal128 prices, an index and a checkpoint document."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    client: MongoClient[Any] = MongoClient(mongo_server.url)
    db = client[name]
    db.prices.insert_many(
        [
            {"_id": f"p{i}", "price": Decimal128(Decimal(f"{i}.000000000000000001"))}
            for i in range(50)
        ]
    )
    db.prices.create_index([("price", ASCENDING)], name="by_price")
    db.checkpoints.insert_one({"_id": "TRADES/analytics-projector", "seq": 77})
    try:
        yield name
    finally:
        client.drop_database(name)
        client.close()


@pytest.fixture
async def js(nats_server: NatsServer) -> AsyncIterator[JetStreamContext]:
    """A JetStream context on the shared NATS server."""
    nc = await nats.connect(nats_server.url)
    try:
        yield nc.jetstream()
    finally:
        await nc.close()


@pytest.fixture
def settings(
    s3_server: S3Server,
    nats_server: NatsServer,
    postgres_server: PostgresServer,
    mongo_server: MongoServer,
    worker_database: str,
    mongo_database: str,
    bucket: str,
) -> BackupRunnerSettings:
    """Settings pointing at the shared servers and this test's databases and bucket."""
    return settings_for(
        **s3_settings(s3_server, bucket),
        nats_url=nats_server.url,
        nats_creds=nats_server.creds_dir,
        postgres_dsn=worker_database,
        pg_bin_dir=str(postgres_server.bin_dir),
        mongo_url=mongo_server.url,
        mongo_databases=[mongo_database],
        segment_max_messages=10,
    )


@pytest.fixture
def store(settings: BackupRunnerSettings) -> MinioObjectStore:
    """The S3 adapter on this test's bucket."""
    return object_store(settings)


@pytest.fixture
def empty_database(postgres_server: PostgresServer) -> Iterator[str]:
    """A new empty database on the shared server (a restore target)."""
    name = f"restore_{uuid.uuid4().hex[:12]}"
    dsn = postgres_server.create_database(name)
    yield dsn
    postgres_server.drop_database(name)
