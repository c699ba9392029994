"""One series across the tiers: each period once, from the tier that knows it best.

The tiers are given in order of preference: hot first (Redis is written from the ticks
themselves, so it holds the freshest and the forming candle), then warm, then cold. Each
tier streams its candles of the range oldest first; the read path merges them by open
time and, where several tiers hold a period, keeps the preferred one. So a seam between
tiers can neither leave a gap that one of them covers nor repeat a period. What each
tier served is recorded as runs of consecutive candles, and what a tier should have held
but could not serve (a missing or unreadable cold file) as gaps with their time range.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from fleet_events import CandleInterval
from fleet_history.model import Candle, Gap, HistoryError, ReportsGaps, Tier


@dataclass
class Served:
    """A run of consecutive candles one tier served."""

    tier: str
    first: datetime
    last: datetime
    count: int = 1


@dataclass
class Report:
    """What a read returned, tier by tier."""

    runs: list[Served] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)

    def add(self, tier: str, candle: Candle) -> None:
        """Count ``candle`` as served by ``tier``."""
        if self.runs and self.runs[-1].tier == tier:
            run = self.runs[-1]
            run.last = candle.open_time
            run.count += 1
        else:
            self.runs.append(Served(tier, candle.open_time, candle.open_time))

    @property
    def total(self) -> int:
        """Candles returned."""
        return sum(r.count for r in self.runs)


def check_range(interval: str, start: datetime, end: datetime) -> CandleInterval:
    """The interval of a request, refusing an unknown one or an empty range."""
    try:
        known = CandleInterval(interval)
    except ValueError:
        names = ", ".join(i.value for i in CandleInterval)
        raise HistoryError(f"unknown interval {interval!r}", fix=f"use one of {names}") from None
    if start.tzinfo is None or end.tzinfo is None:
        raise HistoryError("times need a time zone", fix="write them as 2026-01-05T00:00Z")
    if start >= end:
        raise HistoryError(
            f"--from {start.isoformat()} is not before --to {end.isoformat()}",
            fix="give a range whose start comes before its end",
        )
    return known


async def read_candles(
    tiers: Sequence[Tier],
    symbol: str,
    interval: CandleInterval,
    start: datetime,
    end: datetime,
    report: Report | None = None,
) -> AsyncIterator[Candle]:
    """The candles of ``symbol`` opened in [start, end), oldest first, each period once."""
    streams = [tier.candles(symbol, interval, start, end) for tier in tiers]
    heads: list[Candle | None] = [await anext(s, None) for s in streams]
    try:
        while True:
            times = [h.open_time for h in heads if h is not None]
            if not times:
                break
            now = min(times)
            chosen: tuple[int, Candle] | None = None
            for k, head in enumerate(heads):
                if head is not None and head.open_time == now:
                    if chosen is None:
                        chosen = (k, head)
                    heads[k] = await anext(streams[k], None)
            assert chosen is not None
            k, candle = chosen
            if report is not None:
                report.add(tiers[k].name, candle)
            yield candle
    finally:
        for s in streams:
            await s.aclose()  # type: ignore[attr-defined]
        for tier in tiers:
            if isinstance(tier, ReportsGaps):
                if report is not None:
                    report.gaps.extend(tier.gaps)
                tier.gaps.clear()
