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
from datetime import UTC, datetime

from fleet_events import CandleInterval
from fleet_history.model import (
    Candle,
    FindsFirst,
    Gap,
    HistoryError,
    ReportsGaps,
    ServesBatches,
    Sink,
    Tier,
)


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
        self.add_run(tier, candle.open_time, candle.open_time, 1)

    def add_run(self, tier: str, first: datetime, last: datetime, count: int) -> None:
        """Count ``count`` consecutive candles from ``first`` to ``last`` as served by ``tier``."""
        if self.runs and self.runs[-1].tier == tier:
            run = self.runs[-1]
            run.last = last
            run.count += count
        else:
            self.runs.append(Served(tier, first, last, count))

    def add_gaps(self, gaps: list[Gap]) -> None:
        """Record gaps; one that continues the previous (the same file, split where a read
        turned from batches to rows) extends it."""
        for gap in gaps:
            before = self.gaps[-1] if self.gaps else None
            same = before is not None and (before.tier, before.reason) == (gap.tier, gap.reason)
            if before is not None and same and before.end == gap.start:
                self.gaps[-1] = Gap(gap.tier, before.start, gap.end, gap.reason)
            else:
                self.gaps.append(gap)

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
                    report.add_gaps(tier.gaps)
                tier.gaps.clear()


async def write_series(
    tiers: Sequence[Tier],
    sink: Sink,
    symbol: str,
    interval: CandleInterval,
    start: datetime,
    end: datetime,
    report: Report,
) -> None:
    """Write the series of [start, end) to ``sink``, each period once (``read_candles``).

    The stretch that only the last tier (cold) holds, up to the first candle a fresher
    tier holds, goes to the sink as that tier's record batches, never as Python objects:
    no other tier has a period there, so nothing needs merging. The rest is merged row by
    row.
    """
    *fresher, last = tiers
    split = start
    finders = [t for t in fresher if isinstance(t, FindsFirst)]
    if isinstance(last, ServesBatches) and len(finders) == len(fresher):
        firsts = [await t.first_open(symbol, interval, start, end) for t in finders]
        split = min((f for f in firsts if f is not None), default=end)
        if split > start:
            try:
                async for batch in last.batches(symbol, interval, start, split):
                    times = batch.column(0)
                    first = times[0].as_py().astimezone(UTC)
                    final = times[-1].as_py().astimezone(UTC)
                    sink.write_batch(batch)
                    report.add_run(last.name, first, final, batch.num_rows)
            finally:
                report.add_gaps(last.gaps)
                last.gaps.clear()
    if split < end:
        async for candle in read_candles(tiers, symbol, interval, split, end, report):
            sink.write(candle)
