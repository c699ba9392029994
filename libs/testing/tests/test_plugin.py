"""The pytest plugin, exercised in a separate pytest run as a service's suite would use it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

INNER = """
import pytest

NAMES = []


def test_a_gets_an_empty_database(postgres_database, postgres_server):
    name = postgres_database.rsplit("/", 1)[1]
    NAMES.append(name)
    tables = postgres_server.psql(
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", database=name
    )
    assert tables == "0"
    postgres_server.psql("CREATE TABLE t (id int)", database=name)


def test_b_gets_another_and_the_first_is_gone(postgres_database, postgres_server):
    name = postgres_database.rsplit("/", 1)[1]
    assert name != NAMES[0]
    left = postgres_server.psql(f"SELECT count(*) FROM pg_database WHERE datname = '{NAMES[0]}'")
    assert left == "0"


def test_isolated_fleet_is_private(isolated_fleet, redis_server, tmp_path):
    mine = isolated_fleet.redis
    assert mine.port != redis_server.port
    assert mine.workdir.is_relative_to(tmp_path)
    mine.kill()
    assert redis_server.running
"""


def _pytest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_inner.py").write_text(INNER)
    # Its own --basetemp: a default one would reset $TMPDIR/pytest-of-<user> to mode 0700,
    # cutting off the PostgreSQL servers of the outer session's other workers.
    inner = ["--basetemp", str(tmp_path / "inner-tmp")]
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-s", *inner, *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_fixtures_work_in_a_fresh_session(tmp_path: Path) -> None:
    run = _pytest(tmp_path, "--fleet-keep")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "3 passed" in run.stdout
    kept = Path(run.stdout.split("servers' data and logs kept in ", 1)[1].split()[0])
    try:
        assert (kept / "postgres" / "server.log").is_file()
        assert (kept / "redis" / "server.log").is_file()
        assert not (kept / "nats").exists()  # never asked for, never started
    finally:
        shutil.rmtree(kept)


def test_plugin_is_loaded_by_entry_point(tmp_path: Path) -> None:
    run = _pytest(tmp_path, "--fixtures")
    assert run.returncode == 0, run.stderr
    for fixture in ("nats_server", "postgres_database", "isolated_fleet", "s3_server"):
        assert fixture in run.stdout
