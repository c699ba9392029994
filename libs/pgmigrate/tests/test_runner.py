"""The migration runner against a real PostgreSQL, on a throwaway migrations package."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from fleet_pgmigrate import MigrationError, applied_versions, load_migrations, migrate


@pytest.fixture
def package(tmp_path: Path) -> Iterator[Path]:
    """A fresh importable package ``mig_<n>`` holding two migrations; yields its folder."""
    name = f"mig_{tmp_path.name.replace('-', '_').lower()}"
    folder = tmp_path / name
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    (folder / "0001_first.sql").write_text("CREATE TABLE demo.a (x int);")
    (folder / "0002_second.sql").write_text("ALTER TABLE demo.a ADD COLUMN y text;")
    sys.path.insert(0, str(tmp_path))
    try:
        yield folder
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop(name, None)


async def test_applies_in_order_once_and_records_checksums(
    postgres_database: str, package: Path
) -> None:
    conn = await asyncpg.connect(postgres_database)
    try:
        first = await migrate(conn, schema="demo", package=package.name)
        assert [m.file_name for m in first] == ["0001_first.sql", "0002_second.sql"]
        assert await migrate(conn, schema="demo", package=package.name) == []
        done = await applied_versions(conn, "demo")
        expected = {m.version: (m.name, m.checksum) for m in load_migrations(package.name)}
        assert done == expected
        (package / "0003_third.sql").write_text("INSERT INTO demo.a VALUES (1, 'one');")
        third = await migrate(conn, schema="demo", package=package.name)
        assert [m.version for m in third] == [3]
        assert await conn.fetchval("SELECT count(*) FROM demo.a") == 1
    finally:
        await conn.close()


async def test_an_edited_applied_migration_is_refused(
    postgres_database: str, package: Path
) -> None:
    conn = await asyncpg.connect(postgres_database)
    try:
        await migrate(conn, schema="demo", package=package.name)
        (package / "0001_first.sql").write_text("CREATE TABLE demo.a (x bigint);")
        (package / "0003_third.sql").write_text("CREATE TABLE demo.b (x int);")
        with pytest.raises(
            MigrationError, match=r"0001_first\.sql was edited after it was applied"
        ):
            await migrate(conn, schema="demo", package=package.name)
        # Nothing after the failed check ran.
        assert await conn.fetchval("SELECT to_regclass('demo.b')") is None
    finally:
        await conn.close()


async def test_a_failing_migration_rolls_back_and_is_not_recorded(
    postgres_database: str, package: Path
) -> None:
    (package / "0003_bad.sql").write_text("CREATE TABLE demo.c (x int); SELECT 1/0;")
    conn = await asyncpg.connect(postgres_database)
    try:
        with pytest.raises(MigrationError, match=r"0003_bad\.sql failed and was rolled back"):
            await migrate(conn, schema="demo", package=package.name)
        assert sorted(await applied_versions(conn, "demo")) == [1, 2]
        assert await conn.fetchval("SELECT to_regclass('demo.c')") is None
    finally:
        await conn.close()


async def test_unknown_applied_version_and_bad_file_names_are_refused(
    postgres_database: str, package: Path
) -> None:
    conn = await asyncpg.connect(postgres_database)
    try:
        await migrate(conn, schema="demo", package=package.name)
        (package / "0002_second.sql").unlink()
        with pytest.raises(MigrationError, match="migrated by newer code"):
            await migrate(conn, schema="demo", package=package.name)
    finally:
        await conn.close()
    (package / "2_typo.sql").write_text("")
    with pytest.raises(MigrationError, match=r"is not named NNNN_lowercase_name\.sql"):
        load_migrations(package.name)
