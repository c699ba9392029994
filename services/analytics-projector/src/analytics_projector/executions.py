"""Bot executions: one document per run (bot.started -> bot.stopped) with its metrics (pure).

A run's window is [start_time, end_time): the times of its ``bot.started`` and
``bot.stopped`` events (open-ended while running). Its metrics fold the bot's fills
executed inside the window, in stream order. Fills and the window arrive on different
streams in any relative order: a fill whose run is already known is added to the run as
it arrives; when a run starts or stops, its metrics are recomputed from the stored fills
of its window, so the result does not depend on which arrived first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from fleet_trading.metrics import Tally

from analytics_projector.documents import d128, figures
from analytics_projector.performance import FoldedFill

RECENT_TRADES = 50
"""Trades kept in a run's document (the latest by execution time): it stays far below
MongoDB's 16 MB document limit however long the run."""


class RunFill(NamedTuple):
    """What a run needs of one fill (from a fold or from the stored audit log)."""

    stream_seq: int
    executed_at: datetime
    trade_id: str
    symbol: str
    side: str
    quantity: Decimal
    price: Decimal
    fee: Decimal
    realized: Decimal
    reduced_cost: Decimal
    notional: Decimal

    @classmethod
    def of(cls, folded: FoldedFill, stream_seq: int) -> RunFill:
        """The run fill of a just-folded fill."""
        f = folded.fill
        return cls(
            stream_seq,
            f.executed_at,
            f.trade_id,
            f.symbol,
            f.side.value,
            f.quantity,
            f.price,
            f.fee,
            folded.realized,
            folded.reduced_cost,
            folded.notional,
        )

    def view(self) -> dict[str, Any]:
        """The fill as a run document lists it."""
        return {
            "timestamp": self.executed_at,
            "trade_id": self.trade_id,
            "symbol": self.symbol,
            "side": self.side,
            "quantity": d128(self.quantity),
            "price": d128(self.price),
            "fees": d128(self.fee),
            "realized_pnl": d128(self.realized),
        }


@dataclass
class Run:
    """One run of a bot and its running metrics."""

    execution_id: str
    bot_id: str
    deployment_id: str
    start_version: int
    start_time: datetime
    end_time: datetime | None = None
    stop_reason: str | None = None
    user_id: str | None = None
    tally: Tally = field(default_factory=Tally)
    recent: list[RunFill] = field(default_factory=list)

    def contains(self, moment: datetime) -> bool:
        """Whether a fill executed at ``moment`` belongs to this run."""
        return self.start_time <= moment and (self.end_time is None or moment < self.end_time)

    def add(self, fill: RunFill) -> None:
        """Fold one fill of the window (stream order)."""
        self.tally.add(fill.realized, fill.reduced_cost, fill.fee, fill.notional)
        self.recent.append(fill)
        if len(self.recent) > RECENT_TRADES:
            self.recent.sort(key=lambda r: (r.executed_at, r.trade_id), reverse=True)
            del self.recent[RECENT_TRADES:]

    def recompute(self, fills: Iterable[RunFill]) -> None:
        """Start over from the fills of the window (any order: folded by stream sequence)."""
        self.tally = Tally()
        self.recent = []
        for fill in sorted(fills, key=lambda r: r.stream_seq):
            if self.contains(fill.executed_at):
                self.add(fill)

    def document(self) -> dict[str, Any]:
        """The ``bot_executions`` document."""
        figures_ = figures(self.tally.figures())
        duration = None
        if self.end_time is not None:
            duration = d128(Decimal((self.end_time - self.start_time).total_seconds()))
        recent = sorted(self.recent, key=lambda r: (r.executed_at, r.trade_id), reverse=True)
        return {
            "_id": self.execution_id,
            "execution_id": self.execution_id,
            "bot_id": self.bot_id,
            "user_id": self.user_id,
            "deployment_id": self.deployment_id,
            "start_version": self.start_version,
            "status": "running" if self.end_time is None else "stopped",
            "start_time": self.start_time,
            "end_time": self.end_time,
            "duration": duration,
            "stop_reason": self.stop_reason,
            "metrics": {
                "trades": figures_["total_trades"],
                "profit": figures_["realized_pnl"],
                "fees": figures_["fees"],
                "net_profit": figures_["net_pnl"],
                "drawdown": figures_["max_drawdown"],
                "win_rate": figures_["win_rate"],
                "winning_trades": figures_["winning_trades"],
                "losing_trades": figures_["losing_trades"],
            },
            "trades": [r.view() for r in recent[:RECENT_TRADES]],
            "state": {
                "tally": self.tally.to_state(),
                "recent": [_fill_state(r) for r in self.recent],
            },
        }

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> Run:
        """The run a stored document describes."""
        return cls(
            execution_id=doc["_id"],
            bot_id=doc["bot_id"],
            deployment_id=doc["deployment_id"],
            start_version=doc["start_version"],
            start_time=doc["start_time"],
            end_time=doc["end_time"],
            stop_reason=doc["stop_reason"],
            user_id=doc["user_id"],
            tally=Tally.from_state(doc["state"]["tally"]),
            recent=[_fill_from_state(s) for s in doc["state"]["recent"]],
        )


def execution_id(bot_id: str, start_version: int) -> str:
    """The id of the run a ``bot.started`` at ``start_version`` opens."""
    return f"{bot_id}:{start_version}"


def _fill_state(fill: RunFill) -> list[Any]:
    return [value if isinstance(value, int | datetime | str) else str(value) for value in fill]


def _fill_from_state(state: list[Any]) -> RunFill:
    seq, at, trade_id, symbol, side, *decimals = state
    return RunFill(seq, at, trade_id, symbol, side, *(Decimal(d) for d in decimals))
