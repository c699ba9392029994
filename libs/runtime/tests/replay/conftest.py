"""Replay engine tests: a private nats-server per test with the test topology applied."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from nats.js.client import JetStreamContext

from fleet_testing import Fleet

# The test kit (store, worker process, waits) is a package next to the test folders.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runtime_testkit.worker import apply_test_topology, jetstream


@pytest.fixture
def nats_url(isolated_fleet: Fleet) -> str:
    """A fresh nats-server for this test alone."""
    return isolated_fleet.nats.url


@pytest.fixture
async def js(nats_url: str) -> AsyncIterator[JetStreamContext]:
    """JetStream on the private server, test topology applied."""
    async with jetstream(nats_url) as ctx:
        await apply_test_topology(ctx)
        yield ctx
