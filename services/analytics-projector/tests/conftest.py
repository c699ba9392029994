"""Fixtures: a fresh MongoDB database on the shared MongoDB-wire server, and event builders."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest

from analytics_projector.store import MongoAnalyticsStore, Retention
from fleet_events import (
    BotCreated,
    BotStarted,
    BotStopped,
    CandleInterval,
    Event,
    MarketCandle,
    Side,
    TradeCompleted,
    TradeExecuted,
    new_event,
)
from fleet_testing.servers import MongoServer

# Recent, so the TTL indexes (30 and 90 days) never expire test documents mid-test.
T0 = datetime.combine(datetime.now(UTC).date() - timedelta(days=5), time(9, 30), tzinfo=UTC)


@asynccontextmanager
async def fresh_store(
    url: str, retention: Retention | None = None
) -> AsyncIterator[MongoAnalyticsStore]:
    """The adapter on a new database (its indexes created), dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    opened = MongoAnalyticsStore.open(url, name, retention=retention)
    await opened.probe()
    try:
        yield opened
    finally:
        await opened.frame.client.drop_database(name)
        await opened.close()


@pytest.fixture
async def store(mongo_server: MongoServer) -> AsyncIterator[MongoAnalyticsStore]:
    """The adapter on a new database of the shared server (dropped after the test)."""
    async with fresh_store(mongo_server.url) as opened:
        yield opened


def fill(
    trade_id: str,
    *,
    side: Side = Side.BUY,
    quantity: str | Decimal = "1",
    price: str | Decimal = "100",
    fee: str | Decimal = "0",
    bot_id: str = "bot-1",
    user_id: str = "user-1",
    symbol: str = "BTCUSDT",
    at: datetime = T0,
    order_id: str | None = None,
) -> Event[TradeExecuted]:
    """A trade.executed event with a new event id."""
    return new_event(
        TradeExecuted(
            trade_id=trade_id,
            order_id=order_id or f"o-{trade_id}",
            bot_id=bot_id,
            user_id=user_id,
            symbol=symbol,
            side=side,
            quantity=Decimal(quantity),
            price=Decimal(price),
            fee=Decimal(fee),
            fee_currency="USDT",
            executed_at=at,
        ),
        source="test",
    )


def completed(order_id: str, bot_id: str = "bot-1") -> Event[TradeCompleted]:
    """A trade.completed event."""
    return new_event(
        TradeCompleted(
            order_id=order_id,
            bot_id=bot_id,
            user_id="user-1",
            symbol="BTCUSDT",
            filled_quantity=Decimal(1),
            average_price=Decimal(100),
        ),
        source="test",
    )


def candle(
    symbol: str, open_time: datetime, close: str | Decimal, interval: str = "1m"
) -> Event[MarketCandle]:
    """A closed candle event (open = high = low = close)."""
    step = {"1m": timedelta(minutes=1), "1h": timedelta(hours=1)}[interval]
    price = Decimal(close)
    return new_event(
        MarketCandle(
            symbol=symbol,
            interval=CandleInterval(interval),
            open_time=open_time,
            close_time=open_time + step,
            open=price,
            high=price,
            low=price,
            close=price,
            volume=Decimal(1),
            trade_count=1,
        ),
        source="test",
    )


def created(bot_id: str, name: str, user_id: str = "user-1", version: int = 1) -> Event[Any]:
    """A bot.created event."""
    return new_event(
        BotCreated(
            bot_id=bot_id, version=version, user_id=user_id, name=name, type="realtime", config={}
        ),
        source="test",
    )


def started(bot_id: str, version: int, at: datetime, deployment: str = "d1") -> Event[Any]:
    """A bot.started event at ``at``."""
    return new_event(
        BotStarted(bot_id=bot_id, version=version, deployment_id=deployment),
        source="test",
        time=at,
    )


def stopped(bot_id: str, version: int, at: datetime, deployment: str = "d1") -> Event[Any]:
    """A bot.stopped event at ``at``."""
    return new_event(
        BotStopped(bot_id=bot_id, version=version, deployment_id=deployment, reason="request"),
        source="test",
        time=at,
    )
