"""Stale tickers: a ticker whose feed went silent says so.

Every write of a ticker sets its ``stale`` field from the age of its last trade. A feed that
stops sends no more writes, so a sweep flags the tickers whose last trade has become older
than ``ticker_stale_after`` since. The flag is only ever raised by the sweep; the next trade
lowers it. The sweep compares ``trade_time`` inside Redis before raising it, so it never
marks a ticker that a trade refreshed after the sweep read it.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from functools import partial

from redis.asyncio import Redis

from fleet_runtime.errors import StoreUnavailable
from fleet_runtime.logs import get_logger
from market_ingest.store import Keys, guarded, is_stale

log = get_logger("market_ingest.staleness")

# KEYS[1]: the ticker; ARGV[1]: the trade_time the sweep judged stale.
_MARK_LUA = """
if redis.call('HGET', KEYS[1], 'trade_time') ~= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[1], 'stale') == '1' then return 0 end
redis.call('HSET', KEYS[1], 'stale', '1')
return 1
"""


class StaleTickers:
    """Flags the tickers under ``keys`` whose last trade is older than ``stale_after``."""

    def __init__(self, redis: Redis, stale_after: timedelta, keys: Keys | None = None) -> None:
        self._redis = redis
        self.stale_after = stale_after
        self._keys = keys or Keys()
        self._mark = redis.register_script(_MARK_LUA)

    @property
    def every(self) -> timedelta:
        """How often ``run`` sweeps: a quarter of the threshold, at least once a second."""
        return max(self.stale_after / 4, timedelta(seconds=1))

    async def sweep(self, now: datetime | None = None) -> list[str]:
        """Flag what went stale since the last sweep; the tickers flagged now."""
        stale_before = (now or datetime.now(UTC)) - self.stale_after
        keys = [k async for k in self._redis.scan_iter(match=self._keys.tickers, count=1000)]
        if not keys:
            return []

        async def read() -> list[list[bytes | None]]:
            async with self._redis.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.hmget(key, ["trade_time", "stale"])
                result: list[list[bytes | None]] = await pipe.execute()
                return result

        flagged = []
        for key, (trade_time, stale) in zip(keys, await guarded(read), strict=True):
            if trade_time is None or stale == b"1":
                continue
            if not is_stale(trade_time.decode(), stale_before):
                continue
            if await guarded(partial(self._mark, keys=[key], args=[trade_time])):
                flagged.append(key.decode().rsplit(":", 1)[-1])
        return sorted(flagged)

    async def run(self) -> None:
        """Sweep until cancelled; a Redis outage skips sweeps (the worker reports it)."""
        while True:
            await asyncio.sleep(self.every.total_seconds())
            try:
                for symbol in await self.sweep():
                    log.info("ticker_stale", symbol=symbol, silent_for=str(self.stale_after))
            except StoreUnavailable as exc:
                log.debug("stale_sweep_skipped", error=str(exc))
