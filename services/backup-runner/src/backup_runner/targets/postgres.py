"""PostgreSQL: one ``pg_dump`` custom-format archive per worker schema, streamed to S3.

pg_dump writes to a pipe that the upload reads a part at a time, so a dump of any size
needs one part of memory. The schema's ``checkpoints`` rows go into the manifest: they
are the stream positions the dumped data reflects (pg_dump's snapshot holds the same rows).
"""

from __future__ import annotations

import asyncio
import subprocess
import tempfile
from typing import Any

import asyncpg

from backup_runner.errors import BackupRefused
from backup_runner.manifest import ManifestObject, backup_prefix
from backup_runner.objects import ObjectStore
from backup_runner.targets import TargetResult
from fleet_runtime.errors import StoreUnavailable

_UNREACHABLE = ("could not connect", "connection refused", "timeout expired", "no such file")


def pg_dump_version(pg_dump: str) -> str:
    """``pg_dump --version`` (e.g. ``pg_dump (PostgreSQL) 18.1``)."""
    out = subprocess.run([pg_dump, "--version"], capture_output=True, text=True, check=True)
    return out.stdout.strip()


async def _checkpoints(dsn: str, schema: str) -> list[dict[str, Any]]:
    try:
        conn = await asyncpg.connect(dsn, timeout=10)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise StoreUnavailable(f"PostgreSQL unreachable: {type(exc).__name__}: {exc}") from exc
    try:
        exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{schema}.checkpoints")
        if not exists:
            return []
        rows = await conn.fetch(f"SELECT * FROM {schema}.checkpoints ORDER BY 1")  # noqa: S608
        return [
            {k: (v if isinstance(v, int | str) else str(v)) for k, v in r.items()} for r in rows
        ]
    finally:
        await conn.close()


def _dump(pg_dump: str, dsn: str, schema: str, store: ObjectStore, key: str) -> ManifestObject:
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(
            [pg_dump, "--format=custom", f"--schema={schema}", "--no-password", f"--dbname={dsn}"],
            stdout=subprocess.PIPE,
            stderr=errors,
        )
        assert proc.stdout is not None
        try:
            stored = store.put_stream(key, proc.stdout)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        code = proc.wait()
        errors.seek(0)
        message = errors.read().decode(errors="replace").strip()
    if code != 0:
        # The object holds a truncated dump: remove it (no manifest lists it either way).
        store.delete(key)
        last = message.splitlines()[-1] if message else f"exit status {code}"
        if any(m in message.lower() for m in _UNREACHABLE):
            raise StoreUnavailable(f"pg_dump of schema {schema}: {last}")
        raise BackupRefused(f"pg_dump of schema {schema} failed: {last}")
    return ManifestObject.of(stored, f"pg_dump custom format of schema {schema}")


async def back_up(
    *,
    backup_id: str,
    dsn: str,
    schemas: list[str],
    pg_dump: str,
    store: ObjectStore,
) -> TargetResult:
    """Dump each schema in ``schemas`` to ``backups/<id>/postgres/<schema>.dump``."""
    result = TargetResult(tools={"pg_dump": await asyncio.to_thread(pg_dump_version, pg_dump)})
    for schema in schemas:
        result.positions[f"postgres.{schema}.checkpoints"] = await _checkpoints(dsn, schema)
        key = f"{backup_prefix(backup_id)}postgres/{schema}.dump"
        result.objects.append(await asyncio.to_thread(_dump, pg_dump, dsn, schema, store, key))
    return result
