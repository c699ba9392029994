"""A private JetStream server per test, so every test starts from an empty server."""

from __future__ import annotations

import pytest

from fleet_testing import Fleet


@pytest.fixture
def nats_url(isolated_fleet: Fleet) -> str:
    """URL of a fresh nats-server 2.15 with JetStream, stopped after the test."""
    return isolated_fleet.nats.url
