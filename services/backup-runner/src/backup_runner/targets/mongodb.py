"""MongoDB: each collection's documents as canonical Extended JSON lines (zstd) plus its
index definitions.

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
from pymongo import MongoClient
from pymongo.errors import ConnectionFailure, PyMongoError

from backup_runner.manifest import ManifestObject, backup_prefix
from backup_runner.objects import ChunkReader, ObjectStore
from backup_runner.targets import TargetResult
from fleet_runtime.errors import StoreUnavailable

CHECKPOINTS = "checkpoints"
_LEVEL = 3


def _lines(client: MongoClient[Any], database: str, collection: str) -> Iterator[bytes]:
    cursor = client[database][collection].find({}, sort=[("_id", 1)], batch_size=1000)
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
            db = client[database]
            result.positions[f"mongodb.{database}.checkpoints"] = [
                json.loads(json_util.dumps(d, json_options=RELAXED_JSON_OPTIONS))
                for d in db[CHECKPOINTS].find({})
            ]
            for collection in sorted(db.list_collection_names()):
                prefix = f"{backup_prefix(backup_id)}mongodb/{database}/{collection}"
                data = store.put_stream(
                    f"{prefix}.jsonl.zst",
                    ChunkReader(_compressed(_lines(client, database, collection))),
                )
                result.objects.append(
                    ManifestObject.of(data, f"documents of {database}.{collection}")
                )
                indexes = [dict(ix) for ix in db[collection].list_indexes()]
                raw = json_util.dumps(indexes, json_options=CANONICAL_JSON_OPTIONS).encode()
                stored = store.put_bytes(f"{prefix}.indexes.json", raw)
                result.objects.append(
                    ManifestObject.of(stored, f"index definitions of {database}.{collection}")
                )
    except ConnectionFailure as exc:
        raise StoreUnavailable(f"MongoDB unreachable: {type(exc).__name__}") from exc
    except PyMongoError as exc:
        raise StoreUnavailable(f"MongoDB error: {type(exc).__name__}: {exc}") from exc
    finally:
        client.close()
    return result


async def back_up(
    *, backup_id: str, url: str, databases: list[str], store: ObjectStore, timeout_s: float
) -> TargetResult:
    """Copy every collection of each database in ``databases``."""
    return await asyncio.to_thread(_back_up_sync, url, databases, backup_id, store, timeout_s)
