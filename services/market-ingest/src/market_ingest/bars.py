"""OHLCV bars and bar series: the in-memory form of one candle sorted set.

A ``Bar`` is one candle (or one minute bucket of the 24 h window). Its Redis form is a
compact JSON member of a sorted set scored by the bar's open time in epoch milliseconds.
Pure: no I/O.
"""

from __future__ import annotations

import json
from bisect import bisect_right, insort
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal
from functools import lru_cache, reduce
from typing import NamedTuple

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
# Running sums are kept in a context that never rounds: adding and later subtracting a
# bar's volume leaves exactly the sum of the bars still kept.
_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)
_ZERO = Decimal(0)


def epoch_us(moment: datetime) -> int:
    """Whole microseconds since the Unix epoch (exact integer arithmetic)."""
    return (moment - EPOCH) // _US


def from_epoch_us(us: int) -> datetime:
    """The UTC datetime of ``us`` microseconds since the epoch."""
    return EPOCH + timedelta(microseconds=us)


@lru_cache(maxsize=4096)
def _second_text(second: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS`` of a whole second since the epoch (UTC, no offset)."""
    return (EPOCH + timedelta(seconds=second)).isoformat()[:-6]


def iso_us(us: int) -> str:
    """ISO-8601 UTC text (``Z``) of an epoch-microsecond time.

    The same text as ``datetime.isoformat`` (fraction only when not zero), built from a
    cached per-second prefix: ticks share their second, and ``isoformat`` on a datetime
    decoded by pydantic costs about a microsecond.
    """
    second, micro = divmod(us, 1_000_000)
    if micro:
        return f"{_second_text(second)}.{micro:06d}Z"
    return f"{_second_text(second)}Z"


def dec(value: Decimal) -> str:
    """Fixed-point text of a decimal: never exponent notation, exponent kept as is."""
    # str() is plain notation, equal to format "f", unless it chose exponent notation.
    text = str(value)
    if "E" in text or "e" in text:
        return format(value, "f")
    return text


def earliest(us: list[int]) -> tuple[int, int]:
    """The smallest time and the first position holding it."""
    first = min(us)
    return first, us.index(first)


def latest(us: list[int]) -> tuple[int, int]:
    """The largest time and the last position holding it."""
    last = max(us)
    if us[-1] == last:
        return last, len(us) - 1
    return last, len(us) - 1 - us[::-1].index(last)


class Run(NamedTuple):
    """Consecutive trades (stream order) of one period, summed up once for every series.

    ``open``/``close`` are the prices of the earliest trade (the first among equal times)
    and of the latest (the last among equal times); ``high``/``low`` the first of equal
    extremes; ``volume`` the exact sum.
    """

    first_us: int
    open: Decimal
    last_us: int
    close: Decimal
    high: Decimal
    low: Decimal
    volume: Decimal
    trades: int

    @classmethod
    def of(cls, us: list[int], prices: list[Decimal], qtys: list[Decimal]) -> Run:
        """The run of these trades (non-empty, stream order)."""
        first_us, i = earliest(us)
        last_us, j = latest(us)
        volume = reduce(_EXACT.add, qtys) if len(qtys) > 1 else qtys[0]
        return cls(
            first_us, prices[i], last_us, prices[j], max(prices), min(prices), volume, len(us)
        )


@dataclass(slots=True)
class Bar:
    """Open, high, low, close, volume and trade count of one period.

    ``first_us``/``last_us`` are the times of the trades that set ``open``/``close``, so a
    late trade can still take its right place: the open is the earliest trade (the first
    in stream order among equal times), the close the latest (the last among equal times).
    """

    open_time: int
    first_us: int
    last_us: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    count: int

    @classmethod
    def first(cls, open_time: int, us: int, price: Decimal, qty: Decimal) -> Bar:
        """A bar holding a single trade."""
        return cls(open_time, us, us, price, price, price, price, qty, 1)

    def add(self, us: int, price: Decimal, qty: Decimal) -> None:
        """Fold one trade of this period into the bar."""
        if us < self.first_us:
            self.first_us = us
            self.open = price
        if us >= self.last_us:
            self.last_us = us
            self.close = price
        self.high = max(self.high, price)
        self.low = min(self.low, price)
        self.volume = _EXACT.add(self.volume, qty)
        self.count += 1

    def merge(self, run: Run) -> None:
        """Fold a run of this period's trades (later in stream order) in: the same as
        ``add`` for each of its trades."""
        if run.first_us < self.first_us:
            self.first_us = run.first_us
            self.open = run.open
        if run.last_us >= self.last_us:
            self.last_us = run.last_us
            self.close = run.close
        # max/min keep their first argument among equal values: the bar's spelling stays.
        self.high = max(self.high, run.high)
        self.low = min(self.low, run.low)
        self.volume = _EXACT.add(self.volume, run.volume)
        self.count += run.trades

    @classmethod
    def of_run(cls, open_time: int, run: Run) -> Bar:
        """A bar holding the trades of ``run``."""
        return cls(
            open_time,
            run.first_us,
            run.last_us,
            run.open,
            run.high,
            run.low,
            run.close,
            run.volume,
            run.trades,
        )

    def encode(self) -> str:
        """The sorted-set member: JSON with decimals as strings, keys in a fixed order."""
        return (
            f'{{"t":{self.open_time},"o":"{dec(self.open)}","h":"{dec(self.high)}",'
            f'"l":"{dec(self.low)}","c":"{dec(self.close)}","v":"{dec(self.volume)}",'
            f'"n":{self.count},"ft":{self.first_us},"lt":{self.last_us}}}'
        )

    @classmethod
    def decode(cls, raw: str | bytes) -> Bar:
        """Parse a member written by ``encode``."""
        obj = json.loads(raw)
        return cls(
            open_time=int(obj["t"]),
            first_us=int(obj["ft"]),
            last_us=int(obj["lt"]),
            open=Decimal(obj["o"]),
            high=Decimal(obj["h"]),
            low=Decimal(obj["l"]),
            close=Decimal(obj["c"]),
            volume=Decimal(obj["v"]),
            count=int(obj["n"]),
        )


@dataclass(slots=True)
class Totals:
    """Running figures over the bars of a series (the 24 h window's ticker fields).

    Recomputing them from every kept bar on each batch costs O(bars) per symbol: with a
    full window (1,440 minute bars) and a few ticks per symbol per batch, that dominated
    the worker. Instead the series reports each bar it adds, changes or drops:

    - volume and trade count are running sums (volume exact; shown at the exponent a
      fresh sum of the kept bars would have: the smallest of theirs, and 0);
    - high and low are the bars holding them (the oldest among equal values, as ``max``
      and ``min`` over the bars oldest first pick); a bar's high only rises and its low
      only falls, so only dropping that bar makes them unknown, and they are then found
      again from the kept bars.
    """

    volume: Decimal = _ZERO
    count: int = 0
    exponents: Counter[int] = field(default_factory=Counter)
    high: Bar | None = None
    low: Bar | None = None
    stale: bool = False

    def reset(self, bars: list[Bar]) -> None:
        """Start over from ``bars`` (oldest first)."""
        self.volume, self.count, self.exponents = _ZERO, 0, Counter()
        self.high = self.low = None
        self.stale = bool(bars)
        for bar in bars:
            self._add_sums(bar)

    def added(self, bar: Bar) -> None:
        """A new bar (of any age)."""
        self._add_sums(bar)
        self._extremes(bar)

    def changed(self, bar: Bar, old_volume: Decimal, old_count: int) -> None:
        """A kept bar took more trades; ``old_*`` are its figures before."""
        self.volume = _EXACT.add(self.volume, _EXACT.subtract(bar.volume, old_volume))
        self.count += bar.count - old_count
        self._move_exponent(old_volume, bar.volume)
        self._extremes(bar)

    def dropped(self, bar: Bar) -> None:
        """A bar left the series."""
        self.volume = _EXACT.subtract(self.volume, bar.volume)
        self.count -= bar.count
        self._move_exponent(bar.volume, None)
        if bar is self.high or bar is self.low:
            self.stale = True

    @property
    def lost_extremes(self) -> bool:
        """Whether high and low must be found again (``find_extremes``)."""
        return self.stale or self.high is None or self.low is None

    def find_extremes(self, bars: list[Bar]) -> None:
        """Find high and low among the kept ``bars`` (oldest first, not empty)."""
        self.high = max(bars, key=_high_of)
        self.low = min(bars, key=_low_of)
        self.stale = False

    def figures(self) -> tuple[Decimal, Decimal, Decimal, int]:
        """(high, low, volume, count) of the kept bars (extremes known)."""
        assert self.high is not None
        assert self.low is not None
        exponent = min(0, *self.exponents)
        volume = self.volume.quantize(Decimal(1).scaleb(exponent), context=_EXACT)
        return self.high.high, self.low.low, volume, self.count

    def _add_sums(self, bar: Bar) -> None:
        self.volume = _EXACT.add(self.volume, bar.volume)
        self.count += bar.count
        self._move_exponent(None, bar.volume)

    def _move_exponent(self, old: Decimal | None, new: Decimal | None) -> None:
        if old is not None:
            gone = _exponent(old)
            left = self.exponents[gone] - 1
            if left:
                self.exponents[gone] = left
            else:
                del self.exponents[gone]
        if new is not None:
            self.exponents[_exponent(new)] += 1

    def _extremes(self, bar: Bar) -> None:
        if self.stale:
            return
        high, low = self.high, self.low
        if (
            high is None
            or bar.high > high.high
            or (bar.high == high.high and bar.open_time < high.open_time)
        ):
            self.high = bar
        if (
            low is None
            or bar.low < low.low
            or (bar.low == low.low and bar.open_time < low.open_time)
        ):
            self.low = bar


def _high_of(bar: Bar) -> Decimal:
    return bar.high


def _low_of(bar: Bar) -> Decimal:
    return bar.low


def _exponent(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int), "volumes are finite"
    return exponent


@dataclass(slots=True)
class Series:
    """The bars of one sorted set, with its retention rule.

    Retention is either the ``limit`` latest bars (candles) or the bars that opened less
    than ``span_ms`` before the latest one (the 24 h window). Both only ever drop the
    oldest bars, so applying ticks one by one or a batch at a time gives the same result.
    """

    width_ms: int
    limit: int | None = None
    span_ms: int | None = None
    origin_ms: int = 0
    """Periods start at ``origin_ms + k * width_ms`` (weeks: on Mondays)."""
    bars: dict[int, Bar] = field(default_factory=dict)
    order: list[int] = field(default_factory=list)
    touched: set[int] = field(default_factory=set)
    totals: Totals | None = None
    """Running figures over the kept bars, when the series keeps them (the window)."""

    def open_time(self, ms: int) -> int:
        """Open time of the period holding the epoch-millisecond time ``ms``."""
        return ms - (ms - self.origin_ms) % self.width_ms

    @property
    def latest(self) -> int | None:
        """Open time of the newest bar, if any."""
        return self.order[-1] if self.order else None

    def load(self, bars: list[Bar]) -> None:
        """Replace the content with stored bars."""
        self.bars = {b.open_time: b for b in bars}
        self.order = sorted(self.bars)
        self.touched = set()
        if self.totals is not None:
            self.totals.reset([self.bars[t] for t in self.order])

    def figures(self) -> tuple[Decimal, Decimal, Decimal, int]:
        """(high, low, volume, trade count) over the kept bars (a series with totals)."""
        totals = self.totals
        assert totals is not None
        if totals.lost_extremes:
            totals.find_extremes(list(map(self.bars.__getitem__, self.order)))
        return totals.figures()

    def kept(self, open_time: int) -> bool:
        """Whether a bar opening at ``open_time`` is (or would be) retained."""
        latest = self.latest
        if latest is None or open_time > latest:
            return True
        if self.span_ms is not None and open_time <= latest - self.span_ms:
            return False
        # Bars newer than this one: while fewer than `limit`, it is among the latest.
        return self.limit is None or len(self.order) - bisect_right(self.order, open_time) < (
            self.limit
        )

    def add(self, us: int, price: Decimal, qty: Decimal) -> tuple[bool, int | None]:
        """Fold a trade in: (applied, open time of the bar it closed or None)."""
        open_time = self.open_time(us // 1000)
        bar = self.bars.get(open_time)
        if not self.kept(open_time):
            return False, None
        closed = None
        totals = self.totals
        if bar is None:
            latest = self.latest
            bar = self.bars[open_time] = Bar.first(open_time, us, price, qty)
            if latest is None or open_time > latest:
                self.order.append(open_time)
                closed = latest
            else:
                insort(self.order, open_time)
            if totals is not None:
                totals.added(bar)
        else:
            old_volume, old_count = bar.volume, bar.count
            bar.add(us, price, qty)
            if totals is not None:
                totals.changed(bar, old_volume, old_count)
        self.touched.add(open_time)
        return True, closed

    def fold(self, open_time: int, runs: Sequence[Run]) -> tuple[bool, int | None]:
        """Fold runs of trades of the period ``open_time`` in (stream order, non-empty).

        The same result as ``add`` for each trade: whether a bar is kept only changes when
        a bar of another period is added, so it holds for all the runs (given a ``limit``
        of at least 1).
        """
        if not self.kept(open_time):
            return False, None
        closed = None
        totals = self.totals
        bar = self.bars.get(open_time)
        if bar is None:
            latest_time = self.latest
            bar = Bar.of_run(open_time, runs[0])
            self.bars[open_time] = bar
            if latest_time is None or open_time > latest_time:
                self.order.append(open_time)
                closed = latest_time
            else:
                insort(self.order, open_time)
            for run in runs[1:]:
                bar.merge(run)
            if totals is not None:
                totals.added(bar)
        else:
            old_volume, old_count = bar.volume, bar.count
            for run in runs:
                bar.merge(run)
            if totals is not None:
                totals.changed(bar, old_volume, old_count)
        self.touched.add(open_time)
        return True, closed

    def trim(self) -> int:
        """Drop bars outside the retention; return the oldest open time still kept."""
        start = 0
        if self.limit is not None and len(self.order) > self.limit:
            start = len(self.order) - self.limit
        if self.span_ms is not None and self.order:
            floor = self.order[-1] - self.span_ms
            start = max(start, bisect_right(self.order, floor))
        for open_time in self.order[:start]:
            gone = self.bars.pop(open_time)
            self.touched.discard(open_time)
            if self.totals is not None:
                self.totals.dropped(gone)
        del self.order[:start]
        return self.order[0] if self.order else 0

    def take_touched(self) -> list[Bar]:
        """The bars changed since the last call, oldest first; clears the change set."""
        changed = [self.bars[t] for t in sorted(self.touched)]
        self.touched = set()
        return changed
