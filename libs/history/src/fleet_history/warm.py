"""The warm tier: analytics-projector's ``price_history`` collection in MongoDB."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fleet_events import CandleInterval
from fleet_history.model import Candle

if TYPE_CHECKING:
    from pymongo.asynchronous.database import AsyncDatabase


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class MongoCandles:
    """Reads closed candles by (symbol, interval, open_time): the unique index serves it."""

    name = "warm (MongoDB)"

    def __init__(self, database: AsyncDatabase[dict[str, Any]], prefix: str = "") -> None:
        self._collection = database[f"{prefix}price_history"]

    async def first_open(
        self, symbol: str, interval: CandleInterval, start: datetime, end: datetime
    ) -> datetime | None:
        """Open time of the oldest stored candle in [start, end), if any."""
        doc = await self._collection.find_one(
            _range(symbol, interval, start, end), {"open_time": 1}, sort=[("open_time", 1)]
        )
        return None if doc is None else _aware(doc["open_time"])

    async def candles(
        self, symbol: str, interval: CandleInterval, start: datetime, end: datetime
    ) -> AsyncIterator[Candle]:
        """The stored candles opened in [start, end), streamed by the cursor."""
        query = _range(symbol, interval, start, end)
        cursor = self._collection.find(query, batch_size=2000).sort("open_time", 1)
        async for doc in cursor:
            yield Candle(
                symbol=symbol,
                interval=interval,
                open_time=_aware(doc["open_time"]),
                open=_dec(doc["open"]),
                high=_dec(doc["high"]),
                low=_dec(doc["low"]),
                close=_dec(doc["close"]),
                volume=_dec(doc["volume"]),
                trade_count=int(doc["trade_count"]),
            )


def _range(symbol: str, interval: CandleInterval, start: datetime, end: datetime) -> dict[str, Any]:
    return {"symbol": symbol, "interval": interval.value, "open_time": {"$gte": start, "$lt": end}}


def _dec(value: Any) -> Any:
    """A BSON Decimal128 (the only BSON value with ``to_decimal``) as a Python decimal;
    checked by its method so that importing this module does not load bson."""
    to_decimal = getattr(value, "to_decimal", None)
    return to_decimal() if to_decimal is not None else value
