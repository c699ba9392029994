"""Pure market-ingest rules: ticks in, the new per-symbol state and what to write out.

No I/O. ``apply_ticks`` folds a symbol's ticks (in stream order) into its ``SymbolState``
and returns a ``SymbolWrite``: the changed bars, the ticker fields, the price messages and
the candle events of the candles the ticks closed. The store writes that atomically.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from math import gcd
from typing import NamedTuple
from uuid import UUID, uuid5

from fleet_events import (
    CandleInterval,
    Event,
    MarketCandle,
    encode,
    event_class,
    subject_for,
)
from market_ingest.bars import (
    Bar,
    Run,
    Series,
    Totals,
    dec,
    from_epoch_us,
    iso_us,
    latest,
)
from market_ingest.ticks import Trade

SOURCE = "market-ingest"
WINDOW = timedelta(hours=24)
WINDOW_SCOPE = "24h"
"""Label of the 24 h window in the late-tick counts (candle intervals use their name)."""

_MINUTE_MS = 60_000
_PCT = Decimal("0.0001")
_HUNDRED = Decimal(100)
# Fixed namespace: a candle's event id depends only on (symbol, interval, open time).
CANDLE_ID_NAMESPACE = uuid5(UUID(int=0), "tradefleet:market.candle")


class SeqTick(NamedTuple):
    """A trade with its stream sequence."""

    seq: int
    tick: Trade


@dataclass(frozen=True)
class Rules:
    """The settings that shape the state: intervals, retention, price throttle."""

    intervals: tuple[CandleInterval, ...]
    candles_kept: int
    price_min_interval_ms: int = 0
    ticker_stale_after_ms: int = 60_000
    """A ticker whose last trade is older than this (wall clock) is flagged ``stale``."""

    def __post_init__(self) -> None:
        if self.candles_kept < 1:
            raise ValueError(f"candles_kept must be at least 1, not {self.candles_kept}")


def _ms(delta: timedelta) -> int:
    return delta // timedelta(milliseconds=1)


def window_series() -> Series:
    """The 24 h window: one-minute buckets opened less than 24 h before the newest."""
    return Series(width_ms=_MINUTE_MS, span_ms=_ms(WINDOW), totals=Totals())


def candle_series(interval: CandleInterval, kept: int) -> Series:
    """The candles of one interval, the ``kept`` latest."""
    return Series(width_ms=_ms(interval.duration), limit=kept, origin_ms=_ms(interval.origin))


@dataclass(frozen=True, slots=True)
class LastTrade:
    """The newest trade by time (the last in stream order among equal times)."""

    us: int
    price: Decimal
    quantity: Decimal


@dataclass
class SymbolState:
    """Everything stored for one symbol, as of stream sequence ``seq`` (0: nothing yet).

    ``gen`` names the lineage of the stored state: a new one is drawn whenever the state
    starts from nothing, so a writer holding a state of another lineage (before a wipe or
    a rebuild switch-over) is told apart even at an equal sequence.
    """

    symbol: str
    seq: int
    gen: str
    window: Series
    candles: dict[CandleInterval, Series]
    last: LastTrade | None = None
    last_price_sent_us: int | None = None

    @classmethod
    def empty(cls, symbol: str, rules: Rules, gen: str) -> SymbolState:
        """A symbol never seen."""
        return cls(
            symbol=symbol,
            seq=0,
            gen=gen,
            window=window_series(),
            candles={i: candle_series(i, rules.candles_kept) for i in rules.intervals},
        )

    @property
    def token(self) -> str:
        """The stored checkpoint this state corresponds to (``""`` when none is stored)."""
        return f"{self.seq}:{self.gen}" if self.seq else ""


@dataclass(frozen=True)
class SeriesWrite:
    """Bars to (re)write in one sorted set and the oldest open time it keeps."""

    bars: list[Bar]
    keep_from: int


@dataclass
class SymbolWrite:
    """What one symbol's batch changes, for the store to write in one atomic step."""

    symbol: str
    expect: str
    seq: int
    gen: str
    ticker: dict[str, str]
    window: SeriesWrite
    candles: dict[CandleInterval, SeriesWrite]
    prices: list[str]
    closed: list[Event[MarketCandle]]
    applied: int = 0
    duplicates: int = 0
    late_skipped: Counter[str] = field(default_factory=Counter)


def apply_ticks(
    state: SymbolState,
    ticks: Sequence[SeqTick],
    rules: Rules,
    *,
    prices: bool = True,
    closed: bool = True,
) -> SymbolWrite:
    """Fold ``ticks`` (one symbol, stream order) into ``state`` and say what to write.

    ``prices=False`` leaves out the price messages and ``closed=False`` the candle events
    of the candles the ticks closed (a rebuild sends and publishes neither); the state and
    everything else written are the same.

    Ticks at or below the state's sequence were applied before and change nothing. A
    tick older than its bar's retention is skipped for that series and counted.
    ``state`` is changed in place: on a failed write the caller must drop it.

    Consecutive ticks of one grain (the largest period every series' period is a multiple
    of) are summed up once (``Run``) and every series folds those sums (``Series.fold``),
    which gives exactly what folding the ticks one by one gives.
    """
    write = SymbolWrite(
        symbol=state.symbol,
        expect=state.token,
        seq=state.seq,
        gen=state.gen,
        ticker={},
        window=SeriesWrite([], 0),
        candles={},
        prices=[],
        closed=[],
    )
    window, candles = state.window, state.candles
    # Every series' period is a whole number of grains, starting on a grain: runs of one
    # grain split every run.
    bounds = (g for s in candles.values() for g in (s.width_ms, s.origin_ms))
    grain_ms = gcd(window.width_ms, *bounds)
    grain_us = grain_ms * 1000
    throttle_us = rules.price_min_interval_ms * 1000
    sent = state.last_price_sent_us
    symbol_json = json.dumps(state.symbol)
    top = state.seq
    applied: list[SeqTick] = []
    uss: list[int] = []
    values: list[Decimal] = []
    qtys: list[Decimal] = []
    messages = write.prices
    runs: list[tuple[int, int, int]] = []  # (start, end, grain start in ms)
    run_start, run_grain = 0, None
    for item in ticks:
        seq, tick = item
        if seq <= top:
            write.duplicates += 1
            continue
        top = seq
        us = tick.us
        grain = us // grain_us
        if grain != run_grain:
            if run_grain is not None:
                runs.append((run_start, len(uss), run_grain * grain_ms))
            run_start, run_grain = len(uss), grain
        applied.append(item)
        uss.append(us)
        values.append(tick.price)
        qtys.append(tick.quantity)
        if prices and (throttle_us == 0 or sent is None or us - sent >= throttle_us):
            sent = us
            messages.append(_price_message(symbol_json, tick, seq))
    state.seq = write.seq = top
    state.last_price_sent_us = sent
    write.applied = len(applied)
    closing: list[tuple[int, int, CandleInterval, int]] = []
    if run_grain is not None:
        runs.append((run_start, len(uss), run_grain * grain_ms))
        newest, at = latest(uss)
        if state.last is None or newest >= state.last.us:
            state.last = LastTrade(newest, values[at], qtys[at])
        # Each grain run is summed up once; every series folds the sums.
        aggregates = [Run.of(uss[a:b], values[a:b], qtys[a:b]) for a, b, _ in runs]
        skipped, _ = _fold(window, runs, aggregates)
        if skipped:
            write.late_skipped[WINDOW_SCOPE] += skipped
        for position, (interval, series) in enumerate(candles.items()):
            skipped, closes = _fold(series, runs, aggregates)
            if skipped:
                write.late_skipped[interval.value] += skipped
            if closed:
                closing += [(index, position, interval, open_time) for index, open_time in closes]
        # The order folding tick by tick gives: by tick, then by interval.
        closing.sort(key=lambda c: (c[0], c[1]))

    # Closed candles are built before the trims: a batch that spans more periods than
    # are kept (catching up) still publishes the bars it closed and then let go.
    for index, _, interval, open_time in closing:
        bar = candles[interval].bars.get(open_time)
        if bar is not None:
            write.closed.append(
                candle_event(state.symbol, interval, bar, UUID(applied[index].tick.id))
            )
    keep_from = window.trim()
    write.window = SeriesWrite(window.take_touched(), keep_from)
    for interval, series in candles.items():
        keep_from = series.trim()
        write.candles[interval] = SeriesWrite(series.take_touched(), keep_from)
    if write.applied:
        write.ticker = ticker_fields(state)
    return write


def _fold(
    series: Series, runs: list[tuple[int, int, int]], aggregates: list[Run]
) -> tuple[int, list[tuple[int, int]]]:
    """Fold the grain runs into one series: (ticks skipped, [(tick index, closed bar)]).

    ``runs`` are (first tick index, end index, grain start in ms); ``aggregates`` the
    summed-up trades of each run.
    """
    skipped = 0
    closes: list[tuple[int, int]] = []
    # Consecutive runs of one period: (first tick index, tick count, open time, runs).
    periods: list[tuple[int, int, int, list[Run]]] = []
    for (start, end, grain_ms), run in zip(runs, aggregates, strict=True):
        open_time = series.open_time(grain_ms)
        if periods and periods[-1][2] == open_time:
            first, count, _, members = periods[-1]
            members.append(run)
            periods[-1] = (first, count + end - start, open_time, members)
        else:
            periods.append((start, end - start, open_time, [run]))
    for start, count, open_time, members in periods:
        kept, closed = series.fold(open_time, members)
        if not kept:
            skipped += count
        elif closed is not None:
            closes.append((start, closed))
    return skipped, closes


def _price_message(symbol_json: str, tick: Trade, seq: int) -> str:
    # The bytes of ``json.dumps`` with compact separators: decimal and ISO texts hold
    # nothing JSON would escape, the symbol is escaped by json.dumps itself.
    return (
        f'{{"symbol":{symbol_json},"price":"{tick.price_text}",'
        f'"quantity":"{tick.quantity_text}","time":"{tick.time_text}","seq":{seq}}}'
    )


def price_message(tick: Trade, seq: int) -> str:
    """The ``prices:{symbol}`` pub/sub message of one tick (JSON, decimals as strings)."""
    return _price_message(json.dumps(tick.symbol), tick, seq)


def ticker_fields(state: SymbolState) -> dict[str, str]:
    """The ``market:ticker:{symbol}`` hash (without ``updated_at``) from the state.

    The 24 h figures cover the one-minute buckets of the window: from the bucket opened
    1439 minutes before the newest trade's minute up to that trade.
    """
    assert state.last is not None
    window = state.window
    first = window.bars[window.order[0]]
    # Kept up to date bar by bar (``Totals``): the same as max/min (first of equal
    # values) and the exact sums over the kept bars.
    high, low, volume, count = window.figures()
    change = state.last.price - first.open
    pct = (change * _HUNDRED / first.open).quantize(_PCT)
    return {
        "symbol": state.symbol,
        "price": dec(state.last.price),
        "quantity": dec(state.last.quantity),
        "trade_time": iso_us(state.last.us),
        "open_24h": dec(first.open),
        "high_24h": dec(high),
        "low_24h": dec(low),
        "volume_24h": dec(volume),
        "trade_count_24h": str(count),
        "change_24h": dec(change),
        "change_pct_24h": dec(pct),
        "window_start": iso_us(first.open_time * 1000),
    }


def candle_event_id(symbol: str, interval: CandleInterval, open_time_ms: int) -> UUID:
    """Deterministic event id of a closed candle: the same for every replay or retry."""
    return uuid5(CANDLE_ID_NAMESPACE, f"{symbol}|{interval.value}|{open_time_ms}")


def candle_event(
    symbol: str, interval: CandleInterval, bar: Bar, cause: UUID
) -> Event[MarketCandle]:
    """The ``market.candle`` event of a closed bar; its time is the candle's close time."""
    open_time = from_epoch_us(bar.open_time * 1000)
    close_time = open_time + interval.duration
    candle = MarketCandle(
        symbol=symbol,
        interval=interval,
        open_time=open_time,
        close_time=close_time,
        open=bar.open,
        high=bar.high,
        low=bar.low,
        close=bar.close,
        volume=bar.volume,
        trade_count=bar.count,
    )
    return event_class(MarketCandle)(
        id=candle_event_id(symbol, interval, bar.open_time),
        type=MarketCandle.event_type,
        schema_version=MarketCandle.schema_version,
        source=SOURCE,
        time=close_time,
        key=symbol,
        causation_id=cause,
        data=candle,
    )


@dataclass(frozen=True)
class OutboxEntry:
    """A closed-candle event waiting to be published: stored with the state that made it."""

    symbol: str
    event_id: str
    subject: str
    data: bytes

    @classmethod
    def of(cls, event: Event[MarketCandle]) -> OutboxEntry:
        """The outbox form of a candle event."""
        return cls(event.data.symbol, str(event.id), subject_for(event), encode(event))

    def packed(self) -> str:
        """Stored value: subject, newline, the encoded event."""
        return f"{self.subject}\n{self.data.decode()}"

    @classmethod
    def unpack(cls, symbol: str, event_id: str, packed: bytes) -> OutboxEntry:
        """Read a stored value back."""
        subject, _, data = packed.partition(b"\n")
        return cls(symbol, event_id, subject.decode(), data)
