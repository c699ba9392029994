"""Daily portfolio snapshots per user: a function of event timestamps only (pure).

For a user and UTC day D, with ``end`` = midnight after D:
- holdings: per symbol, the signed quantity of the user's fills executed before ``end``;
- price: the close of the symbol's last 1m candle opened before ``end`` (the last candle
  closed at the day's end); with no such candle, the price of the user's latest fill of
  the symbol before ``end`` (by execution time, then trade id);
- total_value = sum of holdings x price (shorts count negative);
- cash = sum over those fills of -(signed quantity x price) - fee;
- total_pnl = total_value + cash (realized and unrealized, net of fees);
- total_pnl_percent = total_pnl / bought notional x 100 (None with nothing bought).
Arrival order and wall clock play no part: a late fill or candle changes the snapshots of
its day and of every later day, and they are recomputed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from fleet_trading import EXACT
from fleet_trading.metrics import QUOTIENT_EXPONENT

from analytics_projector.documents import d128, day_start, next_day
from fleet_events import Side, TradeExecuted

_ZERO = Decimal(0)
_HUNDRED = Decimal(100)


@dataclass(slots=True)
class SymbolFlow:
    """One user's fills of one symbol on one day, summed (exact)."""

    quantity: Decimal = _ZERO
    cash: Decimal = _ZERO
    bought: Decimal = _ZERO
    fees: Decimal = _ZERO
    volume: Decimal = _ZERO
    trades: int = 0
    last_fill: tuple[str, str, Decimal] | None = None
    """(executed_at ISO, trade_id, price) of the day's latest fill."""

    def add(self, fill: TradeExecuted) -> None:
        """Add one fill."""
        notional = EXACT.multiply(fill.price, fill.quantity)
        buy = fill.side is Side.BUY
        self.quantity = (EXACT.add if buy else EXACT.subtract)(self.quantity, fill.quantity)
        cash = EXACT.minus(notional) if buy else notional
        self.cash = EXACT.subtract(EXACT.add(self.cash, cash), fill.fee)
        if buy:
            self.bought = EXACT.add(self.bought, notional)
        self.fees = EXACT.add(self.fees, fill.fee)
        self.volume = EXACT.add(self.volume, notional)
        self.trades += 1
        mark = (fill.executed_at.isoformat(), fill.trade_id, fill.price)
        if self.last_fill is None or mark[:2] > self.last_fill[:2]:
            self.last_fill = mark

    def to_state(self) -> dict[str, Any]:
        """Exact, JSON-safe values."""
        last = self.last_fill
        return {
            "quantity": str(self.quantity),
            "cash": str(self.cash),
            "bought": str(self.bought),
            "fees": str(self.fees),
            "volume": str(self.volume),
            "trades": self.trades,
            "last_fill": None if last is None else [last[0], last[1], str(last[2])],
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> SymbolFlow:
        """The flow ``to_state`` wrote."""
        last = state["last_fill"]
        return cls(
            Decimal(state["quantity"]),
            Decimal(state["cash"]),
            Decimal(state["bought"]),
            Decimal(state["fees"]),
            Decimal(state["volume"]),
            state["trades"],
            None if last is None else (last[0], last[1], Decimal(last[2])),
        )


@dataclass(slots=True)
class DayFlows:
    """One user's fills on one day, per symbol."""

    user_id: str
    day: str
    symbols: dict[str, SymbolFlow] = field(default_factory=dict)

    def add(self, fill: TradeExecuted) -> None:
        """Add one fill of this user and day."""
        flow = self.symbols.get(fill.symbol)
        if flow is None:
            flow = self.symbols[fill.symbol] = SymbolFlow()
        flow.add(fill)


Closes = Mapping[str, Sequence[tuple[str, Decimal]]]
"""Per symbol, (day, close of the day's last 1m candle), sorted by day."""


def snapshots(
    user_id: str, flows: Iterable[DayFlows], closes: Closes, *, since: str, until: str
) -> list[dict[str, Any]]:
    """The snapshot documents of ``user_id`` for the days ``since``..``until`` (inclusive).

    ``flows`` are all the user's stored day flows (any order); the running totals start at
    the first of them, so earlier days are read but only ``since`` onwards are returned.
    """
    by_day = {f.day: f for f in flows}
    if not by_day:
        return []
    held: dict[str, SymbolFlow] = {}
    cursor = {symbol: 0 for symbol in closes}
    price: dict[str, tuple[Decimal, str]] = {}
    documents: list[dict[str, Any]] = []
    previous_pnl: Decimal | None = None
    day = min(by_day)
    while day <= until:
        today = by_day.get(day)
        if today is not None:
            for symbol, flow in today.symbols.items():
                total = held.get(symbol)
                if total is None:
                    total = held[symbol] = SymbolFlow()
                _merge(total, flow)
        for symbol, series in closes.items():
            i = cursor[symbol]
            while i < len(series) and series[i][0] <= day:
                price[symbol] = (series[i][1], "candle")
                i += 1
            cursor[symbol] = i
        pnl, document = _snapshot(user_id, day, held, price, today)
        if day >= since:
            day_pnl = None if previous_pnl is None else EXACT.subtract(pnl, previous_pnl)
            document["performance_metrics"]["day_pnl"] = None if day_pnl is None else d128(day_pnl)
            documents.append(document)
        previous_pnl = pnl
        day = next_day(day)
    return documents


def _merge(total: SymbolFlow, flow: SymbolFlow) -> None:
    total.quantity = EXACT.add(total.quantity, flow.quantity)
    total.cash = EXACT.add(total.cash, flow.cash)
    total.bought = EXACT.add(total.bought, flow.bought)
    total.fees = EXACT.add(total.fees, flow.fees)
    total.volume = EXACT.add(total.volume, flow.volume)
    total.trades += flow.trades
    if flow.last_fill is not None and (
        total.last_fill is None or flow.last_fill[:2] > total.last_fill[:2]
    ):
        total.last_fill = flow.last_fill


def _snapshot(
    user_id: str,
    day: str,
    held: Mapping[str, SymbolFlow],
    price: Mapping[str, tuple[Decimal, str]],
    today: DayFlows | None,
) -> tuple[Decimal, dict[str, Any]]:
    values: list[tuple[str, Decimal, Decimal, str, Decimal]] = []
    total_value = cash = bought = _ZERO
    for symbol in sorted(held):
        flow = held[symbol]
        cash = EXACT.add(cash, flow.cash)
        bought = EXACT.add(bought, flow.bought)
        if not flow.quantity:
            continue
        quote = price.get(symbol)
        if quote is None:
            assert flow.last_fill is not None  # a held symbol has at least one fill
            quote = (flow.last_fill[2], "fill")
        value = EXACT.multiply(flow.quantity, quote[0])
        total_value = EXACT.add(total_value, value)
        values.append((symbol, flow.quantity, quote[0], quote[1], value))
    gross = exact_sum(EXACT.abs(v[4]) for v in values)
    allocation = [
        {
            "symbol": symbol,
            "quantity": d128(quantity),
            "price": d128(quote),
            "price_source": source,
            "value": d128(value),
            "weight": _ratio(EXACT.abs(value), gross),
        }
        for symbol, quantity, quote, source, value in values
    ]
    total_pnl = EXACT.add(total_value, cash)
    percent = _ratio(EXACT.multiply(total_pnl, _HUNDRED), bought)
    flows = today.symbols.values() if today is not None else ()
    day_metrics = {
        "trades": sum(f.trades for f in flows),
        "volume": d128(exact_sum(f.volume for f in flows)),
        "fees": d128(exact_sum(f.fees for f in flows)),
    }
    document = {
        "_id": f"{day}|{user_id}",
        "user_id": user_id,
        "snapshot_date": day_start(day),
        "total_value": d128(total_value),
        "total_pnl": d128(total_pnl),
        "total_pnl_percent": percent,
        "asset_allocation": allocation,
        "performance_metrics": day_metrics,
    }
    return total_pnl, document


def exact_sum(values: Iterable[Decimal]) -> Decimal:
    """The exact sum of ``values`` (``sum()`` would round to the default 28 digits)."""
    total = _ZERO
    for value in values:
        total = EXACT.add(total, value)
    return total


def _ratio(numerator: Decimal, denominator: Decimal) -> Any:
    if not denominator:
        return None
    return d128(
        EXACT.divide(numerator, denominator).quantize(QUOTIENT_EXPONENT, ROUND_HALF_EVEN, EXACT)
    )
