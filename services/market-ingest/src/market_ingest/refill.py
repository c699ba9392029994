"""Older candles for a rebuilt Redis: the bars the MARKET stream no longer holds, taken from
the market-history tiers (warm: MongoDB ``price_history``; cold: Parquet in S3).

Only ``fleet replay`` runs this. ``fleet_history`` is imported when a refill starts, so the
worker process never loads it. The tiers are the ones ``fleet candles`` reads, from the
fleet-wide variables; without them the rebuild holds what the stream gave, and says so.

Each series the stream rebuilt keeps every bar the stream gave, except its oldest (the
seam): the stream may have lost that period's first ticks to retention, so a tier's candle
of the same period with more trades replaces it. Below the seam the tiers' newest bars
fill the series up to ``candles_kept``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis

from fleet_events import CandleInterval
from market_ingest.bars import EPOCH, Bar
from market_ingest.store import RedisMarketStore, guarded

if TYPE_CHECKING:
    from fleet_history import Candle, Tier

NOT_CONFIGURED = (
    "older bars could not be refilled: no warm or cold tier configured (FLEET_MONGO_URL, "
    "FLEET_S3_ENDPOINT); every series holds only what the stream gave"
)
_MS = timedelta(milliseconds=1)


def tier_bar(candle: Candle) -> Bar:
    """A tier's candle as a Redis bar.

    No tier keeps the times of the trades that set the open and close: the period's first
    and last microsecond stand in, so a late trade never moves that open or close.
    """
    open_ms = (candle.open_time - EPOCH) // _MS
    close_ms = (candle.close_time - EPOCH) // _MS
    return Bar(open_ms, open_ms * 1000, close_ms * 1000 - 1, *candle.values)


@dataclass
class Refill:
    """What a refill added."""

    bars: int = 0
    seams: int = 0
    series: int = 0
    gaps: list[str] = field(default_factory=list)

    def line(self, tiers: Sequence[str]) -> str:
        """One line for the replay's output."""
        text = (
            f"refilled {self.bars:,} older bars into {self.series} series from "
            f"{' and '.join(tiers)}; {self.seams} oldest stream bars replaced by fuller tier bars"
        )
        if self.gaps:
            text += f"; gaps in the tiers: {'; '.join(self.gaps)}"
        return text


async def _fill_series(
    tiers: Sequence[Tier],
    store: RedisMarketStore,
    symbol: str,
    interval: CandleInterval,
    kept: int,
    done: Refill,
) -> list[Bar]:
    """The tier bars one series takes (the seam's replacement first, if any)."""
    from fleet_history import Report  # noqa: PLC0415 - the worker must not load it
    from fleet_history.refill import newest_before  # noqa: PLC0415

    bars = store.kept(symbol, interval)
    if not bars:
        return []
    seam = bars[0]
    need = kept - len(bars)
    end = EPOCH + _MS * seam.open_time + interval.duration
    report = Report()
    candles = await newest_before(tiers, symbol, interval, end, need + 1, report)
    done.gaps += [f"{g.tier} {g.start.isoformat()} .. {g.end.isoformat()}" for g in report.gaps]
    writes: list[Bar] = []
    if candles and tier_bar(candles[-1]).open_time == seam.open_time:
        replacement = tier_bar(candles.pop())
        if replacement.count > seam.count:
            writes.append(replacement)
            done.seams += 1
    older = candles[len(candles) - need :] if need > 0 else []
    writes += map(tier_bar, older)
    done.bars += len(older)
    done.series += bool(older)
    return writes


async def refill(
    redis: Redis,
    store: RedisMarketStore,
    intervals: Sequence[CandleInterval],
    kept: int,
    env: Mapping[str, str],
) -> str:
    """Fill every series ``store`` rebuilt up to ``kept`` bars from the tiers; one line on
    what was done (or why nothing could be)."""
    from pymongo.errors import PyMongoError  # noqa: PLC0415 - the worker must not load it

    from fleet_history import HistoryError  # noqa: PLC0415
    from fleet_history.sources import Sources, opened_tiers  # noqa: PLC0415

    sources = Sources.from_env(env)
    if sources.mongo_url is None and sources.s3_endpoint is None:
        return NOT_CONFIGURED
    done = Refill()
    changed: list[str] = []
    try:
        async with opened_tiers(sources, hot=False) as tiers:
            names = [t.name for t in tiers]
            for symbol in store.symbols:
                for interval in intervals:
                    writes = await _fill_series(tiers, store, symbol, interval, kept, done)
                    if writes:
                        key = store.keys.candles(interval, symbol)
                        await guarded(partial(_put, redis, key, writes))
                        changed.append(symbol)
    except (OSError, PyMongoError, HistoryError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return f"older bars could not all be refilled ({done.bars:,} were): {reason}"
    finally:
        await store.reload(sorted(set(changed)))
    return done.line(names)


async def _put(redis: Redis, key: str, bars: Sequence[Bar]) -> list[Any]:
    """Each bar in place of whatever the sorted set holds at its open time."""
    async with redis.pipeline(transaction=True) as pipe:
        for bar in bars:
            pipe.zremrangebyscore(key, bar.open_time, bar.open_time)
            pipe.zadd(key, {bar.encode(): bar.open_time})
        answers: list[Any] = await pipe.execute()
    return answers
