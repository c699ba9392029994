"""Pure rules: bars, retention, duplicates, late ticks, price throttle, candle events."""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from fleet_events import CandleInterval, decode, encode
from market_ingest.bars import Bar, Series, dec, epoch_us, from_epoch_us, iso_us
from market_ingest.logic import Rules, SymbolState, apply_ticks, candle_event_id

from .conftest import T0, seq_ticks, tick

RULES = Rules((CandleInterval.M1, CandleInterval.H1), candles_kept=3)


def test_bar_open_is_earliest_and_close_latest_with_ties_in_stream_order() -> None:
    bar = Bar.first(0, 100, Decimal("10"), Decimal("1"))
    bar.add(100, Decimal("11"), Decimal("1"))  # same time, later: new close, not new open
    bar.add(50, Decimal("9"), Decimal("2"))  # earlier: new open
    assert (bar.open, bar.close, bar.high, bar.low) == (
        Decimal("9"),
        Decimal("11"),
        Decimal("11"),
        Decimal("9"),
    )
    assert (bar.volume, bar.count) == (Decimal("4"), 3)
    assert Bar.decode(bar.encode()) == bar


def test_series_keeps_the_latest_bars_and_refuses_older_ones() -> None:
    s = Series(width_ms=60_000, limit=2)
    for minute in (0, 1, 3):
        assert s.add(minute * 60_000_000, Decimal(1), Decimal(1))[0]
    # Minute 2 is still among the 2 latest (3 is newer); minute 0 no longer is.
    assert s.add(2 * 60_000_000, Decimal(1), Decimal(1)) == (True, None)
    assert s.add(0, Decimal(1), Decimal(1)) == (False, None)
    assert s.trim() == 2 * 60_000
    assert s.order == [120_000, 180_000]


def test_a_batch_spanning_more_periods_than_kept_reports_every_close() -> None:
    """A catching-up batch (one tick a minute for 10 minutes, 3 candles kept): the bars
    closed and trimmed within the batch are still published, each once, with their values."""
    state = SymbolState.empty("SOLUSDT", RULES, "g")
    events = [tick("SOLUSDT", T0 + timedelta(minutes=m), str(10 + m)) for m in range(10)]
    write = apply_ticks(state, seq_ticks(events), RULES)
    m1 = [e.data for e in write.closed if e.data.interval is CandleInterval.M1]
    assert [c.open_time for c in m1] == [T0 + timedelta(minutes=m) for m in range(9)]
    assert [c.close for c in m1] == [Decimal(10 + m) for m in range(9)]
    # Only the 3 latest stay in the store.
    assert len(state.candles[CandleInterval.M1].order) == 3


def test_duplicates_change_nothing_and_closes_are_reported() -> None:
    state = SymbolState.empty("BTCUSDT", RULES, "g")
    events = [tick("BTCUSDT", T0 + timedelta(seconds=s), str(100 + s)) for s in (0, 30, 61, 125)]
    ticks = seq_ticks(events)
    first = apply_ticks(state, ticks[:3], RULES)
    again = apply_ticks(state, ticks, RULES)
    assert (first.applied, again.applied, again.duplicates) == (3, 1, 3)
    assert [(e.data.interval, e.data.open_time) for e in first.closed] == [(CandleInterval.M1, T0)]
    assert [(e.data.interval, e.data.open_time) for e in again.closed] == [
        (CandleInterval.M1, T0 + timedelta(minutes=1))
    ]
    closed = first.closed[0]
    assert closed.id == candle_event_id("BTCUSDT", CandleInterval.M1, epoch_us(T0) // 1000)
    assert (closed.data.open, closed.data.close, closed.data.volume) == (
        Decimal("100"),
        Decimal("130"),
        Decimal("2"),
    )
    assert decode(encode(closed)) == closed
    assert state.seq == 4


def test_price_messages_are_throttled_in_tick_time() -> None:
    rules = Rules((CandleInterval.M1,), candles_kept=5, price_min_interval_ms=1000)
    state = SymbolState.empty("ETHUSDT", rules, "g")
    offsets_ms = (0, 300, 999, 1000, 1500, 2100)
    events = [tick("ETHUSDT", T0 + timedelta(milliseconds=ms), "10") for ms in offsets_ms]
    write = apply_ticks(state, seq_ticks(events), rules)
    assert [m.split('"seq":')[1] for m in write.prices] == ["1}", "4}", "6}"]


def test_price_message_is_the_json_of_the_tick() -> None:
    rules = Rules((CandleInterval.M1,), candles_kept=5)
    state = SymbolState.empty("ETHUSDT", rules, "g")
    moments = (T0, T0 + timedelta(microseconds=7), T0 + timedelta(seconds=1, milliseconds=250))
    events = [tick("ETHUSDT", m, "1E+2", "0.00000010") for m in moments]
    write = apply_ticks(state, seq_ticks(events), rules)
    assert [json.loads(m) for m in write.prices] == [
        {
            "symbol": "ETHUSDT",
            "price": "100",
            "quantity": "0.00000010",
            "time": m.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "seq": n,
        }
        for n, m in enumerate(moments, start=1)
    ]


def test_decimal_and_time_texts_equal_the_standard_formatting() -> None:
    # dec and iso_us take shortcuts (str(), a cached per-second prefix); they must give
    # exactly the text of format(value, "f") and datetime.isoformat().
    values = (
        "0",
        "-0",
        "1.50",
        "1E+2",
        "1.2E-7",
        "0.000001",
        "0.0000001",
        "0E-9",
        "123456789.123456789",
    )
    for text in values:
        assert dec(Decimal(text)) == format(Decimal(text), "f"), text
    rng = random.Random(3)
    samples = [0, -1, 1, 999_999, 1_000_000, -1_000_000, -1_000_001]
    samples += [rng.randint(-6 * 10**16, 10**17) for _ in range(2000)]
    samples += [rng.randint(0, 10**6) * 1_000_000 for _ in range(200)]
    for us in samples:
        assert iso_us(us) == from_epoch_us(us).isoformat().replace("+00:00", "Z"), us


def test_window_figures_kept_bar_by_bar_equal_a_fresh_computation() -> None:
    # The 24 h figures are running totals (Totals); after every batch they must be what
    # max/min (first of equal values) and a sum over the kept bars give, to the digit,
    # through late ticks, bars leaving the window and reloads from the stored form.
    rng = random.Random(11)
    rules = Rules((CandleInterval.M1,), candles_kept=3)
    state = SymbolState.empty("BTCUSDT", rules, "g")
    at, seq = T0, 0
    for batch_no in range(80):
        events = []
        for _ in range(rng.randint(1, 40)):
            at += timedelta(seconds=rng.choice((0, 1, 30, 600, 3600)))
            late = rng.random() < 0.15
            moment = at - timedelta(minutes=rng.randint(0, 1500)) if late else at
            # Equal extremes spelled differently ("12"/"12.0"); a rare finer quantity
            # whose exponent the volume must drop again once its bar has left.
            price = rng.choice(("10", "10.0", "9.50", "11", "12", "12.0", "8", "8.00"))
            qty = "0.125" if rng.random() < 0.02 else rng.choice(("1", "0.5", "2", "3E+1"))
            events.append(tick("BTCUSDT", moment, price, qty))
        apply_ticks(state, seq_ticks(events, first_seq=seq + 1), rules)
        seq += len(events)
        window = state.window
        if batch_no % 10 == 9:
            # As after a restart: the bars read back from their stored form.
            window.load([Bar.decode(window.bars[t].encode()) for t in window.order])
        bars = [window.bars[t] for t in window.order]
        high, low, volume, count = window.figures()
        assert str(high) == str(max(b.high for b in bars))
        assert str(low) == str(min(b.low for b in bars))
        assert str(volume) == str(sum((b.volume for b in bars), Decimal(0)))
        assert count == sum(b.count for b in bars)


def test_folding_a_batch_equals_folding_tick_by_tick() -> None:
    # apply_ticks folds runs of one period at once; Series.add is the one-by-one rule.
    rng = random.Random(7)
    rules = Rules(tuple(CandleInterval), candles_kept=3)
    at, events = T0, []
    for i in range(600):
        at += timedelta(milliseconds=rng.choice((0, 1, rng.randint(1, 900_000))))
        is_late = rng.random() < 0.1
        moment = at - timedelta(minutes=rng.randint(0, 3000)) if is_late else at
        # Equal values spelled differently: the tie rules decide which spelling stays.
        price = rng.choice(("10", "10.0", "10.00", "9.5", "9.50", "9.500", "9.75"))
        events.append(
            tick("BTCUSDT", moment, price, rng.choice(("1", "0.25", "2.000")), trade_id=str(i))
        )
    ticks = seq_ticks(events)
    # One batch, and batches of random sizes.
    state = SymbolState.empty("BTCUSDT", rules, "g")
    write = apply_ticks(state, ticks, rules)
    split = SymbolState.empty("BTCUSDT", rules, "g")
    split_late: Counter[str] = Counter()
    start = 0
    while start < len(ticks):
        end = start + rng.randint(1, 80)
        split_late += apply_ticks(split, ticks[start:end], rules).late_skipped
        start = end

    reference = SymbolState.empty("BTCUSDT", rules, "g")
    late: Counter[str] = Counter()
    for e in events:
        us = epoch_us(e.data.timestamp)
        for scope, series in (
            ("24h", reference.window),
            *((i.value, s) for i, s in reference.candles.items()),
        ):
            if not series.add(us, e.data.price, e.data.quantity)[0]:
                late[scope] += 1
    for series in (reference.window, *reference.candles.values()):
        series.trim()
    assert write.late_skipped == late == split_late
    assert late["1m"] > 0
    assert late["24h"] > 0
    for folded in (state, split):
        for got, want in zip(
            (folded.window, *folded.candles.values()),
            (reference.window, *reference.candles.values()),
            strict=True,
        ):
            assert got.order == want.order
            assert [got.bars[t].encode() for t in got.order] == [
                want.bars[t].encode() for t in want.order
            ]


def test_a_rebuild_without_prices_and_candle_events_writes_the_same_state() -> None:
    """``prices=False, closed=False`` (how a rebuild folds) leaves out only those two."""
    rng = random.Random(11)
    rules = Rules(tuple(CandleInterval), candles_kept=3, price_min_interval_ms=500)
    at, events = T0, []
    for i in range(400):
        at += timedelta(milliseconds=rng.choice((0, 1, rng.randint(1, 600_000))))
        moment = at - timedelta(minutes=rng.randint(0, 90)) if rng.random() < 0.1 else at
        events.append(tick("BTCUSDT", moment, rng.choice(("10", "9.5", "10.25")), trade_id=str(i)))
    ticks = seq_ticks(events)
    live = SymbolState.empty("BTCUSDT", rules, "g")
    rebuilt = SymbolState.empty("BTCUSDT", rules, "g")
    start = 0
    while start < len(ticks):
        end = start + rng.randint(1, 60)
        want = apply_ticks(live, ticks[start:end], rules)
        got = apply_ticks(rebuilt, ticks[start:end], rules, prices=False, closed=False)
        assert (got.prices, got.closed) == ([], [])
        assert want.prices
        assert (got.seq, got.applied, got.duplicates, got.late_skipped, got.ticker) == (
            want.seq,
            want.applied,
            want.duplicates,
            want.late_skipped,
            want.ticker,
        )
        for mine, theirs in (
            (got.window, want.window),
            *zip(got.candles.values(), want.candles.values(), strict=True),
        ):
            assert mine.keep_from == theirs.keep_from
            assert [b.encode() for b in mine.bars] == [b.encode() for b in theirs.bars]
        start = end
    assert any(apply_ticks(SymbolState.empty("BTCUSDT", rules, "g"), ticks, rules).closed)


def test_weekly_candles_open_on_monday_midnight_utc_and_30m_on_the_half_hour() -> None:
    rules = Rules((CandleInterval.M30, CandleInterval.W1), candles_kept=5)
    sunday_late = datetime(2026, 12, 6, 23, 59, 59, tzinfo=UTC)  # a Sunday
    monday = datetime(2026, 12, 7, 0, 0, tzinfo=UTC)
    events = [
        tick("BTCUSDT", sunday_late, "10"),
        tick("BTCUSDT", monday, "11"),
        tick("BTCUSDT", monday + timedelta(minutes=29, seconds=59), "12"),
        tick("BTCUSDT", monday + timedelta(minutes=30), "13"),
    ]
    state = SymbolState.empty("BTCUSDT", rules, "g")
    write = apply_ticks(state, seq_ticks(events), rules)
    weeks = state.candles[CandleInterval.W1]
    week_of_sunday = datetime(2026, 11, 30, tzinfo=UTC)  # that Sunday's Monday
    assert weeks.order == [epoch_us(week_of_sunday) // 1000, epoch_us(monday) // 1000]
    assert [weeks.bars[t].close for t in weeks.order] == [Decimal("10"), Decimal("13")]
    halves = state.candles[CandleInterval.M30]
    assert [halves.bars[t].count for t in halves.order] == [1, 2, 1]
    closed = {(c.data.interval, c.data.open_time) for c in write.closed}
    assert (CandleInterval.W1, week_of_sunday) in closed
    assert (CandleInterval.M30, monday) in closed
