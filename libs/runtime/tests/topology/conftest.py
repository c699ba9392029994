"""A private JetStream server per test, so every test starts from an empty server."""

from __future__ import annotations

import pytest

from fleet_testing import Fleet


@pytest.fixture
def nats_url(isolated_fleet: Fleet, monkeypatch: pytest.MonkeyPatch) -> str:
    """URL of a fresh nats-server 2.15 with JetStream, stopped after the test.

    The `fleet topology` commands present the admin's seed (FLEET_NATS_CREDS), as in a
    deployment; the tests' own nats-py clients are the launcher's harness user.
    """
    server = isolated_fleet.nats
    monkeypatch.setenv("FLEET_NATS_CREDS", server.env().get("FLEET_NATS_CREDS", ""))
    return server.url
