"""The newest candles of a series before a time: what refills a Redis series past the stream.

``fleet replay market-ingest`` rebuilds Redis from the ticks the MARKET stream still holds;
the bars older than those come from here (the warm and cold tiers). A series keeps a count
of bars, not a time span, so quiet periods push its oldest bar further back: the range is
read backwards in growing steps until it holds enough bars or reaches ``horizon``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from fleet_events import CandleInterval
from fleet_history.model import Candle, Tier
from fleet_history.stitch import Report, read_candles

_GROWTH = 4
HORIZON = timedelta(days=6 * 366)
"""How far back a refill looks at most: the cold tier keeps wider intervals five years."""


async def newest_before(
    tiers: Sequence[Tier],
    symbol: str,
    interval: CandleInterval,
    end: datetime,
    count: int,
    report: Report | None = None,
) -> list[Candle]:
    """The ``count`` newest candles opened before ``end``, oldest first (fewer if the tiers
    hold fewer within ``max(count periods, HORIZON)``), each period once."""
    if count <= 0:
        return []
    horizon = end - max(interval.duration * count * _GROWTH, HORIZON)
    found: list[Candle] = []
    span = interval.duration * (count + 1)
    high = end
    while len(found) < count and high > horizon:
        low = max(high - span, horizon)
        chunk = [c async for c in read_candles(tiers, symbol, interval, low, high, report)]
        found = chunk + found
        high = low
        span *= _GROWTH
    return found[-count:]
