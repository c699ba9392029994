"""One backup from request to manifest: validate, run the target, write the manifest last."""

from __future__ import annotations

import asyncio
import hashlib
import platform
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

from nats.js.client import JetStreamContext

from backup_runner import coldtier
from backup_runner.candlefiles import ColdRetention
from backup_runner.encryption import SCHEME, EncryptedObjectStore, key_id, parse_key
from backup_runner.errors import BackupRefused
from backup_runner.manifest import Manifest, backup_prefix, manifest_key
from backup_runner.objects import ObjectStore
from backup_runner.settings import BackupRunnerSettings
from backup_runner.targets import TargetResult, mongodb, postgres, streams

TARGETS = ("postgres", "mongodb", "stream")


@dataclass(frozen=True)
class BackupRequest:
    """What to back up (the fields of ``ops.backup.requested``)."""

    backup_id: str
    target: str
    scope: str | None
    requested_by: str


@dataclass(frozen=True)
class BackupDone:
    """A written backup: its manifest, the manifest's key and digest, and how long it took."""

    manifest: Manifest
    key: str
    sha256: str
    duration_s: float


def find_pg_dump(bin_dir: str | None) -> str:
    """pg_dump from ``bin_dir``, else from PATH."""
    if bin_dir:
        path = Path(bin_dir) / "pg_dump"
        if not path.is_file():
            raise BackupRefused(f"pg_dump not found in {bin_dir} (BACKUP_RUNNER_PG_BIN_DIR)")
        return str(path)
    found = shutil.which("pg_dump")
    if found is None:
        raise BackupRefused("pg_dump not found: set BACKUP_RUNNER_PG_BIN_DIR")
    return found


def _scoped(kind: str, scope: str | None, known: list[str]) -> list[str]:
    if scope is None:
        return list(known)
    if scope not in known:
        raise BackupRefused(f"unknown {kind} {scope!r} (known: {', '.join(known)})")
    return [scope]


class BackupRunner:
    """Runs backups against the configured stores and the object store."""

    def __init__(
        self, settings: BackupRunnerSettings, store: ObjectStore, js: JetStreamContext
    ) -> None:
        self._settings = settings
        self._store = store
        self._js = js
        secret = settings.encryption_key
        self._key = parse_key(secret.get_secret_value()) if secret is not None else None
        # Objects go through the encrypting store; the manifest is written in the clear.
        self._data: ObjectStore = (
            store if self._key is None else EncryptedObjectStore(store, self._key)
        )

    def check(self, request: BackupRequest) -> None:
        """Refuse an unknown target or scope before anything is written."""
        s = self._settings
        if request.target not in TARGETS:
            raise BackupRefused(f"unknown target {request.target!r} (known: {', '.join(TARGETS)})")
        known = {
            "postgres": ("schema", s.postgres_schemas),
            "mongodb": ("database", s.mongo_databases),
            "stream": ("stream", s.archive_streams),
        }[request.target]
        _scoped(known[0], request.scope, known[1])

    async def _target(self, request: BackupRequest) -> TargetResult:
        s = self._settings
        if request.target == "postgres":
            return await postgres.back_up(
                backup_id=request.backup_id,
                dsn=s.postgres_dsn.get_secret_value(),
                schemas=_scoped("schema", request.scope, s.postgres_schemas),
                pg_dump=find_pg_dump(s.pg_bin_dir),
                store=self._data,
            )
        if request.target == "mongodb":
            return await mongodb.back_up(
                backup_id=request.backup_id,
                url=s.mongo_url.get_secret_value(),
                databases=_scoped("database", request.scope, s.mongo_databases),
                store=self._data,
                timeout_s=s.mongo_timeout_s,
            )
        archived = _scoped("stream", request.scope, s.archive_streams)
        result = await streams.back_up(
            js=self._js,
            streams=archived,
            store=self._data,
            raw=self._store,
            subjects=s.archive_subjects,
            segment_max=s.segment_max_messages,
        )
        if s.history_stream is not None and s.history_stream in archived:
            # The cold market-history tier follows the archive it is derived from.
            cold = await asyncio.to_thread(
                coldtier.compact,
                segments=self._data,
                files=self._store,
                stream=s.history_stream,
                retention=ColdRetention(s.history_1m_days, s.history_wider_days),
                now=datetime.now(UTC),
            )
            result.positions["history.candles"] = cold.position()
            result.gaps.extend(cold.problems)
        return result

    async def run(self, request: BackupRequest) -> BackupDone:
        """Write the backup's objects, then its manifest; raise before the manifest on failure."""
        self.check(request)
        started = time.monotonic()
        started_at = datetime.now(UTC)
        await asyncio.to_thread(self._store.ensure_bucket)
        # A run of this request that was killed mid-upload left unfinished parts.
        await asyncio.to_thread(self._store.abort_uploads, backup_prefix(request.backup_id))
        result = await self._target(request)
        manifest = Manifest(
            backup_id=request.backup_id,
            target=request.target,
            scope=request.scope,
            requested_by=request.requested_by,
            started_at=started_at,
            finished_at=datetime.now(UTC),
            objects=result.objects,
            positions=result.positions,
            tools={
                "backup-runner": version("backup-runner"),
                "python": platform.python_version(),
                "minio": version("minio"),
                **result.tools,
            },
            gaps=result.gaps,
            encryption=SCHEME if self._key is not None else None,
            key_id=key_id(self._key) if self._key is not None else None,
        )
        raw = manifest.to_bytes()
        key = manifest_key(request.backup_id)
        # Last: until this object exists, nothing above counts as a backup.
        await asyncio.to_thread(self._store.put_bytes, key, raw)
        return BackupDone(
            manifest, key, hashlib.sha256(raw).hexdigest(), time.monotonic() - started
        )
