"""pytest fixtures over ``Fleet``: shared session servers, per-test databases, private fleets.

Loaded automatically through the ``pytest11`` entry point; disable with ``-p no:fleet_testing``.
Nothing starts until a test asks for a server fixture.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleet_testing.fleet import Fleet
from fleet_testing.servers import (
    MongoServer,
    NatsServer,
    PostgresServer,
    RedisServer,
    S3Server,
    ServerKind,
)


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--fleet-keep``."""
    group = parser.getgroup("fleet", "Tradefleet backing servers")
    group.addoption(
        "--fleet-keep",
        action="store_true",
        default=False,
        help="keep the session servers' directory (data, server.log) after the run",
    )


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Say which servers come from FLEET_*_URL instead of being launched."""
    external = [k.env_var for k in ServerKind if os.environ.get(k.env_var, "").strip()]
    if not external:
        return []
    return [f"fleet: external servers from {', '.join(external)}"]


@pytest.fixture(scope="session")
def fleet(request: pytest.FixtureRequest) -> Iterator[Fleet]:
    """The session's shared servers; each kind starts when a test first needs it.

    Do not stop, kill or restart these: other tests use them. Use ``isolated_fleet``.
    """
    keep = bool(request.config.getoption("fleet_keep"))
    launched = Fleet(keep=keep)
    try:
        yield launched
    finally:
        launched.stop()
        if keep:
            print(f"\nfleet: servers' data and logs kept in {launched.base_dir}")


@pytest.fixture(scope="session")
def nats_server(fleet: Fleet) -> NatsServer:
    """The shared JetStream server; ``.url`` for clients."""
    return fleet.nats


@pytest.fixture(scope="session")
def postgres_server(fleet: Fleet) -> PostgresServer:
    """The shared PostgreSQL server; prefer ``postgres_database`` for a clean database."""
    return fleet.postgres


@pytest.fixture(scope="session")
def redis_server(fleet: Fleet) -> RedisServer:
    """The shared Redis server."""
    return fleet.redis


@pytest.fixture(scope="session")
def mongo_server(fleet: Fleet) -> MongoServer:
    """The shared MongoDB-wire server."""
    return fleet.mongo


@pytest.fixture(scope="session")
def s3_server(fleet: Fleet) -> S3Server:
    """The shared S3 server."""
    return fleet.s3


@pytest.fixture
def postgres_database(postgres_server: PostgresServer) -> Iterator[str]:
    """The DSN of a new empty database on the shared server, dropped after the test."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    dsn = postgres_server.create_database(name)
    try:
        yield dsn
    finally:
        postgres_server.drop_database(name)


@pytest.fixture
def isolated_fleet(tmp_path: Path) -> Iterator[Fleet]:
    """A private fleet for this test alone: always local servers it may kill and restart.

    Data and ``server.log`` files stay under the test's ``tmp_path`` for post-mortems.
    """
    private = Fleet(tmp_path / "fleet", use_external=False, keep=True)
    try:
        yield private
    finally:
        private.stop()
