"""MongoDB: each collection's documents as canonical Extended JSON lines (zstd) plus its
index definitions.

Each database is read in one snapshot (a read-only transaction with read concern
``snapshot``): the checkpoints and every collection are those of one moment, so a
restored database holds the effects of exactly the events before its checkpoints and
catches up from them without losing or doubling one. Collections read one after another
without it would each reflect a later moment than the last (a fill in ``trading_events``
but not yet in ``bot_performance``, never counted after a restore). On MongoDB such a
transaction is bounded by ``transactionLifetimeLimitSeconds`` (60 s by default): a
database that takes longer to read needs that server parameter raised.

Canonical Extended JSON keeps every BSON type exact (Decimal128 as ``$numberDecimal``,
dates, ObjectIds), so a restore writes back the same values. Documents are read with a
cursor and compressed as they come: memory stays at one batch and one upload part.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from importlib.metadata import version
from typing import Any

import zstandard
from bson import json_util
from bson.json_util import CANONICAL_JSON_OPTIONS, RELAXED_JSON_OPTIONS
from pymongo import MongoClient, ReadPreference
from pymongo.client_session import ClientSession
from pymongo.errors import ConnectionFailure, PyMongoError
from pymongo.read_concern import ReadConcern

from backup_runner.manifest import ManifestObject, backup_prefix
from backup_runner.objects import ChunkReader, ObjectStore
from backup_runner.targets import TargetResult
from fleet_runtime.errors import StoreUnavailable

CHECKPOINTS = "checkpoints"
_LEVEL = 3


def _lines(
    client: MongoClient[Any], database: str, collection: str, session: ClientSession
) -> Iterator[bytes]:
    cursor = client[database][collection].find(
        {}, sort=[("_id", 1)], batch_size=1000, session=session
    )
    for doc in cursor:
        yield json_util.dumps(doc, json_options=CANONICAL_JSON_OPTIONS).encode() + b"\n"


def _compressed(lines: Iterator[bytes]) -> Iterator[bytes]:
    compressor = zstandard.ZstdCompressor(level=_LEVEL).compressobj()
    for line in lines:
        out = compressor.compress(line)
        if out:
            yield out
    yield compressor.flush()


def _back_up_sync(
    url: str, databases: list[str], backup_id: str, store: ObjectStore, timeout_s: float
) -> TargetResult:
    result = TargetResult(tools={"pymongo": version("pymongo"), "zstandard": zstandard.__version__})
    client: MongoClient[Any] = MongoClient(url, serverSelectionTimeoutMS=int(timeout_s * 1000))
    try:
        result.tools["server"] = str(client.server_info().get("version", "unknown"))
        for database in databases:
            _back_up_database(client, database, backup_id, store, result)
    except ConnectionFailure as exc:
        raise StoreUnavailable(f"MongoDB unreachable: {type(exc).__name__}") from exc
    except PyMongoError as exc:
        raise StoreUnavailable(f"MongoDB error: {type(exc).__name__}: {exc}") from exc
    finally:
        client.close()
    return result


def _back_up_database(
    client: MongoClient[Any],
    database: str,
    backup_id: str,
    store: ObjectStore,
    result: TargetResult,
) -> None:
    db = client[database]
    # Listing collections and indexes is not allowed inside a transaction: done first.
    collections = sorted(db.list_collection_names())
    indexes = {c: [dict(ix) for ix in db[c].list_indexes()] for c in collections}
    with (
        client.start_session() as session,
        session.start_transaction(
            read_concern=ReadConcern("snapshot"), read_preference=ReadPreference.PRIMARY
        ),
    ):
        result.positions[f"mongodb.{database}.checkpoints"] = [
            json.loads(json_util.dumps(d, json_options=RELAXED_JSON_OPTIONS))
            for d in db[CHECKPOINTS].find({}, session=session)
        ]
        for collection in collections:
            prefix = f"{backup_prefix(backup_id)}mongodb/{database}/{collection}"
            data = store.put_stream(
                f"{prefix}.jsonl.zst",
                ChunkReader(_compressed(_lines(client, database, collection, session))),
            )
            result.objects.append(ManifestObject.of(data, f"documents of {database}.{collection}"))
            raw = json_util.dumps(indexes[collection], json_options=CANONICAL_JSON_OPTIONS)
            stored = store.put_bytes(f"{prefix}.indexes.json", raw.encode())
            result.objects.append(
                ManifestObject.of(stored, f"index definitions of {database}.{collection}")
            )


async def back_up(
    *, backup_id: str, url: str, databases: list[str], store: ObjectStore, timeout_s: float
) -> TargetResult:
    """Copy every collection of each database in ``databases``."""
    return await asyncio.to_thread(_back_up_sync, url, databases, backup_id, store, timeout_s)
