"""The only place analytics-projector subscribes: TRADES, MARKET candles and BOTS."""

from __future__ import annotations

from typing import Any

from analytics_projector.store import AnalyticsStore
from fleet_events import (
    BOTS_STREAM,
    MARKET_STREAM,
    TRADES_STREAM,
    BotCreated,
    BotDeleted,
    BotDeployed,
    BotStarted,
    BotStopped,
    BotUpdated,
    MarketCandle,
    TradeCompleted,
    TradeExecuted,
    TradeFailed,
)
from fleet_runtime.consume import Subscription
from fleet_runtime.delivery import Batch
from fleet_runtime.logs import get_logger

log = get_logger("analytics_projector")

DURABLE = "analytics-projector"


def subscriptions(store: AnalyticsStore) -> list[Subscription]:
    """The worker's three subscriptions (one durable per stream), bound to ``store``."""

    async def on_trades(batch: Batch[Any]) -> None:
        result = await store.record_trades(batch)
        log.debug("trades_projected", seq=batch.last_seq, result=result)

    async def on_candles(batch: Batch[Any]) -> None:
        written = await store.record_candles(batch)
        log.debug("candles_projected", seq=batch.last_seq, candles=written)

    async def on_bots(batch: Batch[Any]) -> None:
        applied = await store.record_bots(batch)
        log.debug("bots_projected", seq=batch.last_seq, applied=applied)

    return [
        Subscription(
            stream=TRADES_STREAM,
            durable=DURABLE,
            handler=on_trades,
            accepts=(TradeExecuted, TradeCompleted, TradeFailed),
        ),
        Subscription(
            stream=MARKET_STREAM, durable=DURABLE, handler=on_candles, accepts=(MarketCandle,)
        ),
        Subscription(
            stream=BOTS_STREAM,
            durable=DURABLE,
            handler=on_bots,
            accepts=(BotCreated, BotUpdated, BotDeployed, BotStarted, BotStopped, BotDeleted),
        ),
    ]
