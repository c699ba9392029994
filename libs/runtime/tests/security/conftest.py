"""Security tests: the generated NATS users on a real nats-server, the `fleet` entry point."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
import pytest_asyncio

from fleet_runtime.topology import apply, load_topology
from fleet_testing import Fleet, NatsServer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runtime_testkit.cli import REPO, FleetRunner, fleet_runner


@pytest.fixture
def fleet_cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> FleetRunner:
    """Run `fleet ARGS` through its real entry point, from the repository root."""
    return fleet_runner(capsys, monkeypatch)


@pytest.fixture
def secured_fleet(tmp_path: Path) -> Iterator[Fleet]:
    """A private fleet whose NATS admits only the generated users (no harness user)."""
    private = Fleet(tmp_path / "fleet", use_external=False, keep=True, nats_anonymous=False)
    try:
        yield private
    finally:
        private.stop()


@pytest_asyncio.fixture
async def secured_nats(secured_fleet: Fleet) -> AsyncIterator[NatsServer]:
    """That fleet's nats-server with the repository's streams.yaml applied by the admin."""
    server = secured_fleet.nats
    nc = await nats.connect(server.url, **server.client_options("admin"))
    try:
        await apply(nc.jetstream(), load_topology(REPO / "streams.yaml"))
    finally:
        await nc.close()
    return server
