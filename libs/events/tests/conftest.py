"""One valid payload of every event type, shared by the contract tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from fleet_events import (
    BackupCompleted,
    BackupFailed,
    BackupRequested,
    BackupTarget,
    BotCreated,
    BotDeleted,
    BotDeployed,
    BotStarted,
    BotStopped,
    BotUpdated,
    CandleInterval,
    MarketCandle,
    MarketTick,
    Payload,
    Side,
    TradeCompleted,
    TradeExecuted,
    TradeFailed,
)

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
BOT = "0b9d6a52-3f0e-4c1e-9a57-3c9c2f6f1a10"
USER = "u-42"


def trade_executed(**changes: object) -> TradeExecuted:
    """Return a valid fill, with ``changes`` applied."""
    fields: dict[str, object] = {
        "trade_id": "t-1",
        "order_id": "o-1",
        "bot_id": BOT,
        "user_id": USER,
        "symbol": "BTCUSDT",
        "side": Side.BUY,
        "quantity": Decimal("0.1") + Decimal("0.2"),
        "price": Decimal("64000.12345678"),
        "fee": Decimal("0.00001"),
        "fee_currency": "BNB",
        "executed_at": T0,
    }
    fields.update(changes)
    return TradeExecuted.model_validate(fields)


def all_payloads() -> list[Payload]:
    """Return one valid payload per event type."""
    return [
        BotCreated(
            bot_id=BOT,
            user_id=USER,
            name="mean reversion",
            type="scheduled",
            description="buys dips",
            config={"interval": "1h", "threshold": "0.02", "symbols": ["BTCUSDT"]},
            version=1,
            tags=["btc", "swing"],
            risk_level=2,
            max_position_size=Decimal("1000.50"),
        ),
        BotUpdated(bot_id=BOT, version=2, name="mean reversion v2", tags=["btc"]),
        BotDeployed(
            bot_id=BOT,
            deployment_id="d-1",
            version=3,
            runtime="python3.11",
            image="registry.local/bots/mr:3",
            resources={"cpu": "500m", "memory": "256Mi"},
            environment={"name": "production"},
        ),
        BotStarted(bot_id=BOT, deployment_id="d-1", version=4),
        BotStopped(bot_id=BOT, deployment_id="d-1", version=5, reason="user request"),
        BotDeleted(bot_id=BOT, version=6),
        trade_executed(),
        TradeCompleted(
            order_id="o-1",
            bot_id=BOT,
            user_id=USER,
            symbol="BTCUSDT",
            filled_quantity=Decimal("0.3"),
            average_price=Decimal("64000.5"),
        ),
        TradeFailed(
            order_id="o-2", bot_id=BOT, user_id=USER, symbol="ETHUSDT", reason="insufficient funds"
        ),
        MarketTick(
            symbol="ETHUSDT",
            price=Decimal("3000.01"),
            quantity=Decimal("1.5"),
            timestamp=T0,
            is_buyer_maker=True,
            trade_id="987654321",
        ),
        MarketCandle(
            symbol="ETHUSDT",
            interval=CandleInterval.M5,
            open_time=T0,
            close_time=datetime(2024, 5, 1, 12, 5, tzinfo=UTC),
            open=Decimal("3000"),
            high=Decimal("3010.5"),
            low=Decimal("2999.75"),
            close=Decimal("3005"),
            volume=Decimal("123.456"),
            trade_count=42,
        ),
        BackupRequested(
            backup_id="bk-20240501", target=BackupTarget.POSTGRES, requested_by="scheduler"
        ),
        BackupCompleted(
            backup_id="bk-20240501",
            target=BackupTarget.POSTGRES,
            object_key="postgres/2024-05-01/dump.tar.zst",
            size_bytes=1_048_576,
            sha256="a" * 64,
        ),
        BackupFailed(backup_id="bk-20240502", target=BackupTarget.MONGODB, reason="timeout"),
    ]


@pytest.fixture
def samples() -> dict[str, Payload]:
    """One valid payload per event type, keyed by event type."""
    return {payload.event_type: payload for payload in all_payloads()}


@pytest.fixture
def make_trade() -> Callable[..., TradeExecuted]:
    """Builder of a valid ``trade.executed`` payload with some fields changed."""
    return trade_executed
