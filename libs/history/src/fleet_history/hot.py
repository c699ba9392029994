"""The hot tier: market-ingest's candle series in Redis (the ``candles_kept`` latest)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, cast

from fleet_events import CandleInterval
from fleet_history.model import Candle

if TYPE_CHECKING:
    from redis.asyncio import Redis

_PAGE = 1000


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class RedisCandles:
    """Reads ``market:candles:<interval>:<symbol>`` (scored by open time in ms).

    The newest bar of a series is the period still forming: it comes back with
    ``closed=False``.
    """

    name = "hot (Redis)"

    def __init__(self, redis: Redis, prefix: str = "") -> None:
        self._redis = redis
        self._prefix = prefix

    def key(self, symbol: str, interval: CandleInterval) -> str:
        """The sorted set of one series."""
        return f"{self._prefix}market:candles:{interval.value}:{symbol}"

    async def first_open(
        self, symbol: str, interval: CandleInterval, start: datetime, end: datetime
    ) -> datetime | None:
        """Open time of the series' oldest bar in [start, end), if any."""
        first = await self._redis.zrangebyscore(
            self.key(symbol, interval), _ms(start), f"({_ms(end)}", start=0, num=1, withscores=True
        )
        return datetime.fromtimestamp(int(first[0][1]) / 1000, UTC) if first else None

    async def candles(
        self, symbol: str, interval: CandleInterval, start: datetime, end: datetime
    ) -> AsyncIterator[Candle]:
        """The series' bars opened in [start, end), in pages of 1,000."""
        key = self.key(symbol, interval)
        newest = await self._redis.zrange(key, -1, -1, withscores=True)
        newest_ms = int(newest[0][1]) if newest else None
        low = _ms(start)
        while True:
            page = cast(
                "list[tuple[bytes, float]]",
                await self._redis.zrangebyscore(
                    key, low, f"({_ms(end)}", start=0, num=_PAGE, withscores=True
                ),
            )
            for member, score in page:
                bar = json.loads(member)
                yield Candle(
                    symbol=symbol,
                    interval=interval,
                    open_time=datetime.fromtimestamp(bar["t"] / 1000, UTC),
                    open=Decimal(bar["o"]),
                    high=Decimal(bar["h"]),
                    low=Decimal(bar["l"]),
                    close=Decimal(bar["c"]),
                    volume=Decimal(bar["v"]),
                    trade_count=int(bar["n"]),
                    closed=int(score) != newest_ms,
                )
            if len(page) < _PAGE:
                return
            low = int(page[-1][1]) + 1
