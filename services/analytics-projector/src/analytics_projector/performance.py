"""Bot performance: fills folded into positions and tallies, per bot and per bot-day (pure).

A bot's fills are folded in TRADES stream order, each fill once (by ``trade_id``),
through ``fleet_trading.apply_fills``: the same average-cost positions and realized PnL
trade-recorder stores. What each fill realized feeds the bot's all-time ``Tally`` and the
tally of the UTC day the fill was executed on.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from fleet_trading import EXACT, FillResult, Position, apply_fills
from fleet_trading.metrics import Tally

from analytics_projector.documents import d128, day_of
from fleet_events import TradeExecuted

HoldingKey = tuple[str, str]
"""(user_id, symbol) of an open position of one bot."""

_POSITION_DECIMALS = ("quantity", "average_entry_price", "max_quantity", "realized_pnl", "fees")


def position_state(p: Position) -> dict[str, Any]:
    """An open position as exact, JSON-safe values."""
    return {
        "user_id": p.user_id,
        "symbol": p.symbol,
        "side": p.side,
        **{name: str(getattr(p, name)) for name in _POSITION_DECIMALS},
        "fill_count": p.fill_count,
        "opened_at": p.opened_at,
        "last_trade_id": p.last_trade_id,
    }


def position_from_state(bot_id: str, state: Mapping[str, Any]) -> Position:
    """The position ``position_state`` wrote."""
    return Position(
        None,
        state["user_id"],
        bot_id,
        state["symbol"],
        state["side"],
        Decimal(state["quantity"]),
        Decimal(state["average_entry_price"]),
        Decimal(state["max_quantity"]),
        Decimal(state["realized_pnl"]),
        Decimal(state["fees"]),
        state["fill_count"],
        state["opened_at"],
        None,
        state["last_trade_id"],
    )


def position_view(p: Position) -> dict[str, Any]:
    """An open position as the read model shows it (Decimal128 amounts)."""
    return {
        "user_id": p.user_id,
        "symbol": p.symbol,
        "side": p.side,
        **{name: d128(getattr(p, name)) for name in _POSITION_DECIMALS},
        "fill_count": p.fill_count,
        "opened_at": p.opened_at,
    }


@dataclass
class BotBook:
    """What the fold keeps of one bot between batches."""

    bot_id: str
    positions: dict[HoldingKey, Position] = field(default_factory=dict)
    tally: Tally = field(default_factory=Tally)
    first_trade_at: datetime | None = None
    last_trade_at: datetime | None = None

    @classmethod
    def from_state(cls, bot_id: str, state: Mapping[str, Any] | None) -> BotBook:
        """The book a stored ``state`` sub-document describes (empty for None)."""
        if not state:
            return cls(bot_id)
        positions = [position_from_state(bot_id, s) for s in state["positions"]]
        return cls(
            bot_id,
            {(p.user_id, p.symbol): p for p in positions},
            Tally.from_state(state["tally"]),
            state.get("first_trade_at"),
            state.get("last_trade_at"),
        )

    def to_state(self) -> dict[str, Any]:
        """Exact, JSON-safe state the next batch continues from."""
        return {
            "positions": [position_state(p) for _, p in sorted(self.positions.items())],
            "tally": self.tally.to_state(),
            "first_trade_at": self.first_trade_at,
            "last_trade_at": self.last_trade_at,
        }


@dataclass(frozen=True, slots=True)
class FoldedFill:
    """One fill with what it realized: the input of day tallies, runs and the audit log."""

    fill: TradeExecuted
    realized: Decimal
    reduced_cost: Decimal
    notional: Decimal

    @property
    def day(self) -> str:
        """The UTC day the fill was executed on."""
        return day_of(self.fill.executed_at)


def fold_fills(
    book: BotBook, fills: Sequence[TradeExecuted], days: MutableMapping[str, Tally]
) -> list[FoldedFill]:
    """Fold one bot's new fills (stream order) into ``book`` and the tallies in ``days``.

    ``days`` holds the stored tallies of the days the fills fall on (a missing day starts
    empty and is added). Returns each fill with what it realized, in the given order.
    """
    by_holding: dict[HoldingKey, list[int]] = {}
    for i, fill in enumerate(fills):
        by_holding.setdefault((fill.user_id, fill.symbol), []).append(i)
    results: list[FillResult] = [(Decimal(0), Decimal(0))] * len(fills)
    for holding, indexes in by_holding.items():
        got: list[FillResult] = []
        changed = apply_fills(
            book.positions.get(holding),
            [fills[i] for i in indexes],
            key=(holding[0], book.bot_id, holding[1]),
            results=got,
        )
        if changed and changed[-1].is_open:
            book.positions[holding] = changed[-1]
        else:
            book.positions.pop(holding, None)
        for i, result in zip(indexes, got, strict=True):
            results[i] = result
    folded: list[FoldedFill] = []
    for fill, (realized, reduced_cost) in zip(fills, results, strict=True):
        notional = EXACT.multiply(fill.price, fill.quantity)
        entry = FoldedFill(fill, realized, reduced_cost, notional)
        book.tally.add(realized, reduced_cost, fill.fee, notional)
        day = days.get(entry.day)
        if day is None:
            day = days[entry.day] = Tally()
        day.add(realized, reduced_cost, fill.fee, notional)
        at = fill.executed_at
        if book.first_trade_at is None or at < book.first_trade_at:
            book.first_trade_at = at
        if book.last_trade_at is None or at > book.last_trade_at:
            book.last_trade_at = at
        folded.append(entry)
    return folded
