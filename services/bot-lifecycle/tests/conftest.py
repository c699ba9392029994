"""Fixtures: a migrated ``lifecycle`` schema on a fresh database, bot event builders."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from bot_lifecycle.store import ROLE, PostgresBotStore, ensure_roles, run_migrations
from fleet_events import (
    BotCreated,
    BotDeleted,
    BotDeployed,
    BotStarted,
    BotStopped,
    BotUpdated,
    Event,
    new_event,
)
from fleet_pgmigrate import dsn_with
from fleet_testing.batches import Sequencer

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
CHECKPOINT = "bot-lifecycle"


@pytest.fixture
async def lifecycle_dsns(postgres_database: str) -> tuple[str, str]:
    """(owner DSN, bot_lifecycle DSN) of a fresh database with schema lifecycle migrated."""
    await ensure_roles(postgres_database)
    await run_migrations(postgres_database)
    return postgres_database, dsn_with(postgres_database, user=ROLE)


@pytest.fixture
async def store(lifecycle_dsns: tuple[str, str]) -> AsyncIterator[PostgresBotStore]:
    """The adapter, connected as the bot_lifecycle role."""
    opened = await PostgresBotStore.connect(lifecycle_dsns[1])
    try:
        yield opened
    finally:
        await opened.close()


def _at(version: int) -> datetime:
    return T0 + timedelta(minutes=version)


class BotEvents:
    """Builders of bot events; each call makes a new event id, timed by its version."""

    @staticmethod
    def created(bot: str, version: int = 1, user: str = "user-1") -> Event[Any]:
        return new_event(
            BotCreated(
                bot_id=bot,
                version=version,
                user_id=user,
                name=f"{bot} grid",
                type="scheduled",
                description="grid bot",
                config={"grid": 10, "pair": "BTC/USDT"},
                tags=["grid", "btc"],
                risk_level=2,
                max_position_size=Decimal("1.5"),
            ),
            source="test",
            time=_at(version),
        )

    @staticmethod
    def updated(bot: str, version: int, **fields: Any) -> Event[Any]:
        fields = fields or {"name": f"{bot} v{version}"}
        return new_event(
            BotUpdated(bot_id=bot, version=version, **fields), source="test", time=_at(version)
        )

    @staticmethod
    def deployed(bot: str, version: int, deployment: str = "d1") -> Event[Any]:
        return new_event(
            BotDeployed(
                bot_id=bot,
                version=version,
                deployment_id=deployment,
                runtime="python3.11",
                image="bots/grid:1",
                resources={"cpu": "500m"},
            ),
            source="test",
            time=_at(version),
        )

    @staticmethod
    def started(bot: str, version: int, deployment: str = "d1") -> Event[Any]:
        return new_event(
            BotStarted(bot_id=bot, version=version, deployment_id=deployment),
            source="test",
            time=_at(version),
        )

    @staticmethod
    def stopped(
        bot: str, version: int, deployment: str = "d1", reason: str = "requested"
    ) -> Event[Any]:
        return new_event(
            BotStopped(bot_id=bot, version=version, deployment_id=deployment, reason=reason),
            source="test",
            time=_at(version),
        )

    @staticmethod
    def deleted(bot: str, version: int) -> Event[Any]:
        return new_event(BotDeleted(bot_id=bot, version=version), source="test", time=_at(version))


@pytest.fixture
def events() -> type[BotEvents]:
    """The bot event builders."""
    return BotEvents


@pytest.fixture
def stream() -> Sequencer:
    """A fresh stream sequence for building batches."""
    return Sequencer("BOTS", CHECKPOINT)
