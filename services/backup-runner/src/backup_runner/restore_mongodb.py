"""Restore a MongoDB backup: documents and index definitions, digests checked first.

Each object is downloaded to a temporary file and its sha256 compared with the manifest
before a single document is written. Documents are parsed as canonical Extended JSON, so
Decimal128, dates and ObjectIds come back as the same BSON values. The target database
must hold no collections unless ``force`` is given (then each restored collection is
dropped first).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import zstandard
from bson import json_util
from bson.json_util import CANONICAL_JSON_OPTIONS
from pymongo import MongoClient
from pymongo.errors import PyMongoError

from backup_runner.manifest import Manifest
from backup_runner.objects import ObjectStore
from backup_runner.restore_postgres import Restored, check_key, download_checked, plain_copy
from fleet_runtime.errors import UserError

_BATCH = 1000
_INDEX_FIELDS_DROPPED = {"v", "key", "ns"}


def _documents(path: Path) -> Iterator[dict[str, Any]]:
    with path.open("rb") as raw:
        reader = zstandard.ZstdDecompressor().stream_reader(raw)
        pending = b""
        while chunk := reader.read(1024 * 1024):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if line:
                    yield json_util.loads(line, json_options=CANONICAL_JSON_OPTIONS)
        if pending.strip():
            yield json_util.loads(pending, json_options=CANONICAL_JSON_OPTIONS)


def _collections(manifest: Manifest) -> dict[tuple[str, str], dict[str, Any]]:
    """(database, collection) -> its document and index entries."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for entry in manifest.objects:
        database, name = entry.key.split("/mongodb/", 1)[1].split("/", 1)
        for suffix, kind in ((".jsonl.zst", "documents"), (".indexes.json", "indexes")):
            if name.endswith(suffix):
                found.setdefault((database, name.removesuffix(suffix)), {})[kind] = entry
    return found


def restore_mongodb(
    manifest: Manifest,
    store: ObjectStore,
    *,
    url: str,
    database: str | None,
    force: bool,
    key: bytes | None = None,
    loaded: Callable[[int], None] | None = None,
) -> Restored:
    """Load every collection of ``manifest`` into the server at ``url``; ``loaded(n)`` is
    told each time ``n`` more of its objects are in.

    ``database`` renames the one database the backup holds (a drill on the same server).
    """
    check_key(manifest, key)
    collections = _collections(manifest)
    sources = sorted({db for db, _ in collections})
    if database is not None and len(sources) > 1:
        raise UserError(
            f"backup {manifest.backup_id} holds {len(sources)} databases: --database renames one",
            fix="back up one database (scope) to restore it under another name",
        )
    client: MongoClient[Any] = MongoClient(url, serverSelectionTimeoutMS=10_000)
    try:
        targets = {src: database or src for src in sources}
        for target in targets.values():
            existing = client[target].list_collection_names()
            if existing and not force:
                raise UserError(
                    f"the restore target database {target!r} is not empty "
                    f"({len(existing)} collections)",
                    fix="restore into an empty database (--database NAME), or add --force",
                )
        total = 0
        with tempfile.TemporaryDirectory(prefix="fleet-restore-") as tmp:
            for (src, name), entries in sorted(collections.items()):
                collection = client[targets[src]][name]
                if force:
                    collection.drop()
                docs_entry = entries["documents"]
                path = Path(tmp) / f"{src}.{name}.jsonl.zst"
                total += download_checked(store, docs_entry.key, docs_entry.sha256, path)
                path = plain_copy(path, manifest, key)
                batch: list[dict[str, Any]] = []
                for doc in _documents(path):
                    batch.append(doc)
                    if len(batch) == _BATCH:
                        collection.insert_many(batch, ordered=True)
                        batch = []
                if batch:
                    collection.insert_many(batch, ordered=True)
                index_entry = entries.get("indexes")
                if index_entry is not None:
                    ipath = Path(tmp) / f"{src}.{name}.indexes.json"
                    total += download_checked(store, index_entry.key, index_entry.sha256, ipath)
                    ipath = plain_copy(ipath, manifest, key)
                    for spec in json_util.loads(ipath.read_bytes()):
                        if spec["name"] == "_id_":
                            continue
                        options = {k: v for k, v in spec.items() if k not in _INDEX_FIELDS_DROPPED}
                        collection.create_index(list(spec["key"].items()), **options)
                if loaded is not None:
                    loaded(len(entries))
    except PyMongoError as exc:
        raise UserError(
            f"MongoDB restore failed: {type(exc).__name__}: {exc}",
            fix="check --into (mongodb://…) and that the user may write the target database",
        ) from None
    finally:
        client.close()
    return Restored([f"{targets[db]}.{name}" for db, name in sorted(collections)], total)
