"""MARKET candles into ``price_history`` and the day closes portfolio snapshots price from.

Runs inside the batch's transaction. A candle is stored under its natural key (symbol,
interval, open time): the same candle again (any event id) replaces it with the same
values; a corrected one published later in the stream wins.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pymongo import ReplaceOne
from pymongo.asynchronous.client_session import AsyncClientSession

from analytics_projector.documents import d128, day_of
from analytics_projector.retention import Retention
from analytics_projector.store.client import Db, Document
from analytics_projector.store.portfolios import PortfolioWriter
from fleet_events import CandleInterval, MarketCandle
from fleet_runtime.delivery import Batch


def candle_id(candle: MarketCandle) -> str:
    """The natural key of a candle as one string."""
    return f"{candle.symbol}|{candle.interval.value}|{candle.open_time.isoformat()}"


def candle_doc(candle: MarketCandle, seq: int, retention: Retention) -> Document:
    """The ``price_history`` document of a candle; ``expire_at`` drives its TTL."""
    return {
        "symbol": candle.symbol,
        "interval": candle.interval.value,
        "open_time": candle.open_time,
        "close_time": candle.close_time,
        "timestamp": candle.open_time,
        "open": d128(candle.open),
        "high": d128(candle.high),
        "low": d128(candle.low),
        "close": d128(candle.close),
        "volume": d128(candle.volume),
        "trade_count": candle.trade_count,
        "stream_seq": seq,
        "expire_at": retention.expire_at(candle.interval, candle.open_time),
    }


async def apply_candles(
    db: Db, session: AsyncClientSession, batch: Batch[Any], retention: Retention
) -> int:
    """Store the batch's candles; returns how many distinct candles it wrote."""
    latest: dict[str, tuple[MarketCandle, int]] = {}
    closes: dict[str, dict[str, tuple[datetime, Decimal]]] = {}
    for d in batch:
        candle: MarketCandle = d.event.data
        latest[candle_id(candle)] = (candle, d.stream_seq)
        if candle.interval is CandleInterval.M1:
            days = closes.setdefault(candle.symbol, {})
            day = day_of(candle.open_time)
            held = days.get(day)
            if held is None or candle.open_time >= held[0]:
                days[day] = (candle.open_time, candle.close)
    writes = [
        ReplaceOne({"_id": cid}, candle_doc(candle, seq, retention), upsert=True)
        for cid, (candle, seq) in latest.items()
    ]
    await db.price_history.bulk_write(writes, ordered=False, session=session)
    if closes:
        await PortfolioWriter(db, session).add_closes(closes)
    return len(writes)
