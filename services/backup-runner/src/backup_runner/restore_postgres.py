"""Restore a PostgreSQL backup into a database: digests checked first, pg_restore after.

Each schema dump is downloaded to a temporary file while its sha256 is computed; a dump
whose digest differs from the manifest is refused before anything is loaded. The target
database must be empty (no tables outside the system schemas) unless ``force`` is given,
in which case the restored schemas' objects are dropped and re-created (``--clean``).
"""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from backup_runner.encryption import DecryptionFailed, decrypt_chunks, key_id
from backup_runner.manifest import Manifest
from backup_runner.objects import ObjectStore
from fleet_runtime.errors import UserError

_SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")


@dataclass(frozen=True)
class Restored:
    """What a restore loaded."""

    parts: list[str]
    """Schemas, or database.collection names."""
    bytes: int


async def user_tables(dsn: str) -> list[str]:
    """Tables outside the system schemas in the database at ``dsn``."""
    try:
        conn = await asyncpg.connect(dsn, timeout=10)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise UserError(
            f"cannot connect to the restore target: {type(exc).__name__}: {exc}",
            fix="check --into (postgresql://user@host:port/database); the database must exist",
        ) from None
    try:
        rows = await conn.fetch(
            "SELECT schemaname || '.' || tablename AS name FROM pg_tables "
            "WHERE schemaname <> ALL($1::text[]) ORDER BY 1",
            list(_SYSTEM_SCHEMAS),
        )
        return [r["name"] for r in rows]
    finally:
        await conn.close()


def download_checked(store: ObjectStore, key: str, sha256: str, path: Path) -> int:
    """Download ``key`` to ``path``; refuse it (UserError) when its sha256 is not ``sha256``."""
    digest = hashlib.sha256()
    size = 0
    with path.open("wb") as out:
        for chunk in store.get_chunks(key):
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
    if digest.hexdigest() != sha256:
        raise UserError(
            f"{key} does not match its manifest (sha256 {digest.hexdigest()}): not restored",
            fix="restore another backup (`fleet backup list`); run `fleet backup verify` on it",
        )
    return size


def check_key(manifest: Manifest, key: bytes | None) -> None:
    """Refuse a restore whose key is missing or not the one the backup was made with."""
    if manifest.encryption is None:
        return
    if key is None:
        raise UserError(
            f"backup {manifest.backup_id} is encrypted (key id {manifest.key_id})",
            fix="set BACKUP_RUNNER_ENCRYPTION_KEY to the key it was made with",
        )
    if key_id(key) != manifest.key_id:
        raise UserError(
            f"wrong encryption key for backup {manifest.backup_id}: the key given has id "
            f"{key_id(key)}, the backup was made with {manifest.key_id}",
            fix="set BACKUP_RUNNER_ENCRYPTION_KEY to the key the backup was made with",
        )


def plain_copy(path: Path, manifest: Manifest, key: bytes | None) -> Path:
    """``path`` itself, or its decrypted copy when the backup is encrypted."""
    if manifest.encryption is None or key is None:
        return path
    plain = path.with_name(path.name + ".plain")

    def chunks() -> Iterator[bytes]:
        with path.open("rb") as source:
            while chunk := source.read(1024 * 1024):
                yield chunk

    try:
        with plain.open("wb") as out:
            for part in decrypt_chunks(chunks(), key, path.name):
                out.write(part)
    except DecryptionFailed as exc:
        raise UserError(str(exc), fix="check BACKUP_RUNNER_ENCRYPTION_KEY") from None
    return plain


def restore_postgres(
    manifest: Manifest,
    store: ObjectStore,
    *,
    dsn: str,
    pg_restore: str,
    force: bool,
    key: bytes | None = None,
    loaded: Callable[[int], None] | None = None,
) -> Restored:
    """Load every schema dump of ``manifest`` into the database at ``dsn``; ``loaded(n)``
    is told each time ``n`` more of its objects are in."""
    if manifest.target != "postgres":
        raise UserError(
            f"backup {manifest.backup_id} is a {manifest.target} backup: restore handles "
            "postgres and mongodb backups (a stream archive is read by replay)",
            fix="pick a postgres or mongodb backup from `fleet backup list`",
        )
    check_key(manifest, key)
    existing = asyncio.run(user_tables(dsn))
    if existing and not force:
        shown = ", ".join(existing[:5]) + (" …" if len(existing) > 5 else "")
        raise UserError(
            f"the restore target is not empty ({len(existing)} tables: {shown})",
            fix="restore into an empty database, or add --force to replace the restored schemas",
        )
    schemas: list[str] = []
    total = 0
    with tempfile.TemporaryDirectory(prefix="fleet-restore-") as tmp:
        for entry in manifest.objects:
            path = Path(tmp) / entry.key.rsplit("/", 1)[-1]
            total += download_checked(store, entry.key, entry.sha256, path)
            path = plain_copy(path, manifest, key)
            # Grants come back with the tables (the worker roles must exist on the target,
            # as on any fleet cluster); ownership goes to the restoring role.
            args = [pg_restore, "--exit-on-error", "--no-owner"]
            if force:
                args += ["--clean", "--if-exists"]
            done = subprocess.run(
                [*args, f"--dbname={dsn}", str(path)], capture_output=True, text=True, check=False
            )
            if done.returncode != 0:
                last = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
                raise UserError(
                    f"pg_restore of {entry.key} failed: {last}",
                    fix="create the worker roles on the target first (deploy/postgres/roles.sql), "
                    "and check that pg_restore matches the dump's PostgreSQL version "
                    "(BACKUP_RUNNER_PG_BIN_DIR)",
                )
            schemas.append(entry.key.rsplit("/", 1)[-1].removesuffix(".dump"))
            if loaded is not None:
                loaded(1)
    return Restored(schemas, total)
