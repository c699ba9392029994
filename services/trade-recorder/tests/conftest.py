"""Fixtures: a migrated ``trading`` schema on a fresh database, and batch builders."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from fleet_events import (
    Event,
    Side,
    TradeCompleted,
    TradeExecuted,
    TradeFailed,
    new_event,
)
from fleet_pgmigrate import dsn_with
from fleet_testing.batches import Sequencer
from trade_recorder.store import ROLE, PostgresTradeStore, ensure_roles, run_migrations

T0 = datetime(2025, 1, 2, 9, 30, tzinfo=UTC)
CHECKPOINT = "trade-recorder"


@pytest.fixture
async def trading_dsns(postgres_database: str) -> tuple[str, str]:
    """(owner DSN, trade_recorder DSN) of a fresh database with schema trading migrated."""
    await ensure_roles(postgres_database)
    await run_migrations(postgres_database)
    return postgres_database, dsn_with(postgres_database, user=ROLE)


@pytest.fixture
async def store(trading_dsns: tuple[str, str]) -> AsyncIterator[PostgresTradeStore]:
    """The adapter, connected as the trade_recorder role."""
    opened = await PostgresTradeStore.connect(trading_dsns[1])
    try:
        yield opened
    finally:
        await opened.close()


class TradeEvents:
    """Builders of trade events (each call makes a new event id)."""

    @staticmethod
    def fill(
        trade_id: str,
        *,
        side: Side = Side.BUY,
        quantity: str | Decimal = "1",
        price: str | Decimal = "100",
        fee: str | Decimal = "0",
        order_id: str | None = None,
        bot_id: str = "bot-1",
        user_id: str = "user-1",
        symbol: str = "BTCUSDT",
        at: datetime | None = None,
    ) -> Event[TradeExecuted]:
        """A trade.executed event with a new event id."""
        return new_event(
            TradeExecuted(
                trade_id=trade_id,
                order_id=order_id or f"order-{trade_id}",
                bot_id=bot_id,
                user_id=user_id,
                symbol=symbol,
                side=side,
                quantity=Decimal(quantity),
                price=Decimal(price),
                fee=Decimal(fee),
                fee_currency="USDT",
                executed_at=at or T0,
            ),
            source="test",
        )

    @staticmethod
    def completed(
        order_id: str, filled: str = "1", average: str = "100", bot_id: str = "bot-1"
    ) -> Event[TradeCompleted]:
        """A trade.completed event."""
        return new_event(
            TradeCompleted(
                order_id=order_id,
                bot_id=bot_id,
                user_id="user-1",
                symbol="BTCUSDT",
                filled_quantity=Decimal(filled),
                average_price=Decimal(average),
            ),
            source="test",
            time=T0 + timedelta(minutes=1),
        )

    @staticmethod
    def failed(order_id: str, reason: str = "rejected", bot_id: str = "bot-1") -> Event[Any]:
        """A trade.failed event."""
        return new_event(
            TradeFailed(
                order_id=order_id, bot_id=bot_id, user_id="user-1", symbol="BTCUSDT", reason=reason
            ),
            source="test",
        )


@pytest.fixture
def stream() -> Sequencer:
    """A fresh stream sequence for building batches."""
    return Sequencer("TRADES", CHECKPOINT)


@pytest.fixture
def events() -> type[TradeEvents]:
    """The trade event builders."""
    return TradeEvents
