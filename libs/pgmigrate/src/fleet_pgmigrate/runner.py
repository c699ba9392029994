"""Apply a package's ordered .sql migrations to one schema, each exactly once."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class MigrationError(Exception):
    """Migrations cannot be applied as they are; the message says why and what to do."""


@dataclass(frozen=True)
class Migration:
    """One migration file: its version, name, SQL text and that text's checksum."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """sha256 of the file's text: an applied migration must never change."""
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def file_name(self) -> str:
        """The file the migration was read from."""
        return f"{self.version:04d}_{self.name}.sql"


def load_migrations(package: str) -> list[Migration]:
    """Read ``NNNN_name.sql`` files from ``package``, in version order.

    Any other ``.sql`` file name, or two files with one version, is an error: a typo must
    not silently skip a migration.
    """
    found: dict[int, Migration] = {}
    for entry in resources.files(package).iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _FILE_NAME.match(entry.name)
        if match is None:
            raise MigrationError(
                f"migration file {package}/{entry.name} is not named NNNN_lowercase_name.sql"
            )
        version = int(match.group(1))
        if version in found:
            raise MigrationError(
                f"two migrations with version {version} in {package}: "
                f"{found[version].file_name} and {entry.name}"
            )
        found[version] = Migration(version, match.group(2), entry.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def applied_versions(conn: asyncpg.Connection, schema: str) -> dict[int, tuple[str, str]]:
    """Applied migrations of ``schema``: version -> (name, checksum); empty if none yet."""
    table = await conn.fetchval("SELECT to_regclass($1)", f"{_ident(schema)}.schema_migrations")
    if table is None:
        return {}
    rows = await conn.fetch(
        f"SELECT version, name, checksum FROM {_ident(schema)}.schema_migrations"  # noqa: S608 - quoted identifier
    )
    return {r["version"]: (r["name"], r["checksum"]) for r in rows}


async def migrate(conn: asyncpg.Connection, *, schema: str, package: str) -> list[Migration]:
    """Bring ``schema`` up to the newest migration in ``package``; return those applied now.

    Applied migrations are checked against their files first (checksum guard), and
    nothing is applied if any check fails.
    """
    migrations = load_migrations(package)
    lock_key = f"fleet_pgmigrate:{schema}"
    # A session-level advisory lock: a second runner waits, then finds nothing to do.
    await conn.execute("SELECT pg_advisory_lock(hashtext($1))", lock_key)
    try:
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {_ident(schema)}")
        await conn.execute(
            f"""CREATE TABLE IF NOT EXISTS {_ident(schema)}.schema_migrations (
                version    integer PRIMARY KEY,
                name       text NOT NULL,
                checksum   text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )"""
        )
        done = await applied_versions(conn, schema)
        _check_applied(done, migrations, schema, package)
        applied: list[Migration] = []
        for migration in migrations:
            if migration.version in done:
                continue
            try:
                async with conn.transaction():
                    await conn.execute(migration.sql)
                    await conn.execute(
                        f"INSERT INTO {_ident(schema)}.schema_migrations "  # noqa: S608 - quoted identifier
                        "(version, name, checksum) VALUES ($1, $2, $3)",
                        migration.version,
                        migration.name,
                        migration.checksum,
                    )
            except asyncpg.PostgresError as exc:
                raise MigrationError(
                    f"migration {package}/{migration.file_name} failed and was rolled back: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            applied.append(migration)
        return applied
    finally:
        await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", lock_key)


def _check_applied(
    done: dict[int, tuple[str, str]], migrations: list[Migration], schema: str, package: str
) -> None:
    by_version = {m.version: m for m in migrations}
    for version in sorted(done):
        name, checksum = done[version]
        migration = by_version.get(version)
        if migration is None:
            raise MigrationError(
                f"schema {schema} has migration {version:04d}_{name}.sql applied, which "
                f"{package} does not contain: the database was migrated by newer code; "
                "run that version of the service"
            )
        if migration.checksum != checksum:
            raise MigrationError(
                f"migration {package}/{migration.file_name} was edited after it was applied "
                f"to schema {schema} (applied checksum {checksum[:12]}, file now "
                f"{migration.checksum[:12]}): never edit an applied migration; restore the "
                "file and add a new migration with the change"
            )


async def migrate_at(dsn: str, *, schema: str, package: str) -> list[Migration]:
    """Connect to ``dsn`` (an owner role), run ``migrate`` and disconnect."""
    conn = await asyncpg.connect(dsn)
    try:
        return await migrate(conn, schema=schema, package=package)
    finally:
        await conn.close()
