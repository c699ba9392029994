"""Contract tests: the repository's files, the real `fleet` entry point, a private nats-server."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from fleet_testing import Fleet

# The test kit is a package next to the test folders.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runtime_testkit.cli import FleetRunner, fleet_runner


@pytest.fixture
def fleet_cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> FleetRunner:
    """Run `fleet ARGS` through its real entry point, from the repository root."""
    return fleet_runner(capsys, monkeypatch)


@pytest.fixture
def nats_url(isolated_fleet: Fleet, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh nats-server for this test alone; `fleet publish` presents the publisher's
    seed (FLEET_NATS_CREDS), so its permissions are the ones a deployment has."""
    server = isolated_fleet.nats
    monkeypatch.setenv("FLEET_NATS_CREDS", server.env().get("FLEET_NATS_CREDS", ""))
    return server.url
