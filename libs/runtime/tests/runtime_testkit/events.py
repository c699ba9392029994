"""Events for the worker tests: fills with known amounts, published with their ids."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from nats.js.client import JetStreamContext

from fleet_events import Event, Side, TradeExecuted, new_event
from fleet_runtime.publisher import EventPublisher

EXECUTED_AT = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def fill(n: int, *, bot: str = "bot-1", trade_id: str | None = None) -> Event[TradeExecuted]:
    """Fill number ``n``: quantity n/1000, so sums are exact and easy to compute."""
    return new_event(
        TradeExecuted(
            order_id=f"order-{n}",
            bot_id=bot,
            user_id="user-1",
            symbol="BTCUSDT",
            trade_id=trade_id or f"trade-{n}",
            side=Side.BUY,
            quantity=Decimal(n) / 1000,
            price=Decimal("100.5"),
            fee=Decimal("0.01"),
            fee_currency="USDT",
            executed_at=EXECUTED_AT,
        ),
        source="runtime-tests",
    )


def fills(count: int, start: int = 1, bots: int = 1) -> list[Event[TradeExecuted]]:
    """``count`` fills numbered from ``start``, spread over ``bots`` bots (subjects)."""
    return [fill(n, bot=f"bot-{n % bots}") for n in range(start, start + count)]


def total_quantity(events: Sequence[Event[Any]]) -> Decimal:
    """The exact sum of the fills' quantities."""
    return sum((e.data.quantity for e in events), Decimal(0))


async def publish_all(
    js: JetStreamContext, events: Sequence[Event[Any]], chunk: int = 2000
) -> None:
    """Store every event, many acks in flight, in chunks to bound pending futures."""
    publisher = EventPublisher(js, timeout_s=10.0)
    for start in range(0, len(events), chunk):
        acks = await publisher.publish_many(events[start : start + chunk])
        assert not any(a.duplicate for a in acks)
