"""An independent model of the read models, computed straight from the published events.

Written for the tests only and on purpose without the worker's code (no fleet_trading, no
analytics_projector): a plain signed-quantity book per (user, bot, symbol), plain loops
over days. The end-to-end tests compare the worker's documents with it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from typing import Any

from fleet_events import Event, Side

ZERO = Decimal(0)


@dataclass
class BotFigures:
    """What the model expects of one bot (or one bot-day)."""

    trades: int = 0
    winning: int = 0
    losing: int = 0
    realized: Decimal = ZERO
    fees: Decimal = ZERO
    volume: Decimal = ZERO
    net: Decimal = ZERO
    peak: Decimal = ZERO
    max_drawdown: Decimal = ZERO

    def add(self, result: Decimal, fee: Decimal, notional: Decimal) -> None:
        self.trades += 1
        self.winning += result > 0
        self.losing += result < 0
        self.realized += result
        self.fees += fee
        self.volume += notional
        self.net += result - fee
        self.peak = max(self.peak, self.net)
        self.max_drawdown = max(self.max_drawdown, self.peak - self.net)


@dataclass
class Model:
    """Expected figures per bot, bot-day, run, user-day, from distinct fills in stream order."""

    bots: dict[str, BotFigures] = field(default_factory=lambda: defaultdict(BotFigures))
    days: dict[tuple[str, str], BotFigures] = field(default_factory=lambda: defaultdict(BotFigures))
    open_positions: dict[str, int] = field(default_factory=dict)
    fill_results: dict[str, tuple[str, datetime, Decimal]] = field(default_factory=dict)
    """trade_id -> (bot, executed_at, realized)."""
    snapshots: dict[tuple[str, str], tuple[Decimal, Decimal]] = field(default_factory=dict)
    """(user, day) -> (total_value, total_pnl)."""
    distinct_fills: int = 0
    distinct_outcomes: int = 0
    candles: int = 0


def build(events: list[Event[Any]]) -> Model:
    """The model of ``events`` in publish (= stream) order."""
    with localcontext() as ctx:
        ctx.prec = 150
        return _build(events)


def _build(events: list[Event[Any]]) -> Model:
    model = Model()
    seen: set[str] = set()
    books: dict[tuple[str, str, str], list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    fills = []
    outcomes: set[tuple[str, str]] = set()
    candle_keys: set[tuple[str, str, datetime]] = set()
    closes: dict[str, list[tuple[datetime, Decimal]]] = defaultdict(list)
    for event in events:
        d = event.data
        if event.type == "trade.executed":
            if d.trade_id in seen:
                continue
            seen.add(d.trade_id)
            fills.append(d)
            book = books[(d.user_id, d.bot_id, d.symbol)]
            result = _apply(book, d.quantity if d.side is Side.BUY else -d.quantity, d.price)
            notional = d.price * d.quantity
            model.bots[d.bot_id].add(result, d.fee, notional)
            model.days[(d.bot_id, d.executed_at.date().isoformat())].add(result, d.fee, notional)
            model.fill_results[d.trade_id] = (d.bot_id, d.executed_at, result)
        elif event.type in ("trade.completed", "trade.failed"):
            outcomes.add((event.type, d.order_id))
        elif event.type == "market.candle":
            candle_keys.add((d.symbol, d.interval.value, d.open_time))
            if d.interval.value == "1m":
                closes[d.symbol].append((d.open_time, d.close))
    model.distinct_fills = len(fills)
    model.distinct_outcomes = len(outcomes)
    model.candles = len(candle_keys)
    for (_, bot, _), (quantity, _) in books.items():
        model.open_positions[bot] = model.open_positions.get(bot, 0) + (quantity != 0)
    _portfolios(model, fills, closes)
    return model


def _apply(book: list[Decimal], signed: Decimal, price: Decimal) -> Decimal:
    """Average-cost book [signed quantity, average price]; returns the realized result."""
    quantity, average = book
    if quantity == 0:
        book[:] = [signed, price]
        return ZERO
    if (quantity > 0) == (signed > 0):
        total = abs(quantity) + abs(signed)
        average = ((average * abs(quantity) + price * abs(signed)) / total).quantize(
            Decimal("1e-18"), rounding=ROUND_HALF_EVEN
        )
        book[:] = [quantity + signed, average]
        return ZERO
    closing = min(abs(quantity), abs(signed))
    result = (price - average) * closing * (1 if quantity > 0 else -1)
    after = quantity + signed
    if after == 0:
        book[:] = [ZERO, ZERO]
    elif (after > 0) != (quantity > 0):
        book[:] = [after, price]
    else:
        book[:] = [after, average]
    return result


def _portfolios(
    model: Model, fills: list[Any], closes: dict[str, list[tuple[datetime, Decimal]]]
) -> None:
    by_user: dict[str, list[Any]] = defaultdict(list)
    for f in fills:
        by_user[f.user_id].append(f)
    for user, user_fills in by_user.items():
        symbols = {f.symbol for f in user_fills}
        first = min(f.executed_at.date() for f in user_fills)
        last = max(
            [f.executed_at.date() for f in user_fills]
            + [t.date() for s in symbols for t, _ in closes.get(s, [])]
        )
        day = first
        while day <= last:
            end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=UTC)
            before = [f for f in user_fills if f.executed_at < end]
            value = cash = ZERO
            for symbol in sorted(symbols):
                mine = [f for f in before if f.symbol == symbol]
                quantity = sum(
                    (f.quantity if f.side is Side.BUY else -f.quantity for f in mine), ZERO
                )
                cash += sum(
                    (
                        (-f.price * f.quantity if f.side is Side.BUY else f.price * f.quantity)
                        - f.fee
                        for f in mine
                    ),
                    ZERO,
                )
                if quantity == 0:
                    continue
                candles = [c for c in closes.get(symbol, []) if c[0] < end]
                if candles:
                    price = max(candles, key=lambda c: c[0])[1]
                else:
                    price = max(mine, key=lambda f: (f.executed_at, f.trade_id)).price
                value += quantity * price
            model.snapshots[(user, day.isoformat())] = (value, value + cash)
            day += timedelta(days=1)


def run_figures(
    model: Model, bot: str, start: datetime, end: datetime | None
) -> tuple[int, Decimal]:
    """(fills, realized) of ``bot``'s distinct fills executed in [start, end)."""
    count, realized = 0, ZERO
    for fill_bot, at, result in model.fill_results.values():
        if fill_bot == bot and start <= at and (end is None or at < end):
            count += 1
            realized += result
    return count, realized
