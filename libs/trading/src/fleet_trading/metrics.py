"""Performance figures of a run of fills: win rate, profit factor, drawdown, Sharpe (pure, Decimal).

A ``Tally`` is folded fill by fill, in the order the fills are applied to positions (the
stream order), from what each fill realized (``fleet_trading.positions.FillResult``), its
fee and its notional. Every figure is exact Decimal arithmetic; only quotients are
rounded (half-even, ``QUOTIENT_EXPONENT``). A figure that is undefined for the history
(a rate with no decided fill, a profit factor with no loss, a Sharpe ratio of fewer than
two results or no spread) is ``None``: never NaN, never Infinity. docs/analytics.md
defines each one.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from decimal import ROUND_HALF_EVEN, Context, Decimal

from fleet_trading.positions import EXACT

QUOTIENT_EXPONENT = Decimal("1e-10")
"""Quotients (rates, averages, ratios) are rounded half-even to 10 decimal places."""

_ZERO = Decimal(0)
_ROOT = Context(prec=60, rounding=ROUND_HALF_EVEN)

Figure = Decimal | int | None


def _quotient(numerator: Decimal, denominator: Decimal) -> Decimal | None:
    if not denominator:
        return None
    return EXACT.divide(numerator, denominator).quantize(QUOTIENT_EXPONENT, ROUND_HALF_EVEN, EXACT)


@dataclass(slots=True)
class Tally:
    """Running sums of a sequence of fills, from which every figure is derived.

    ``net`` is the cumulative realized PnL net of fees after the last fill; ``peak`` its
    highest value so far (starting at zero), and ``max_drawdown`` the largest fall from a
    peak. ``results``, ``result_sum`` and ``result_squares`` cover the fills that reduced
    a position (the Sharpe ratio's sample).
    """

    trades: int = 0
    winning: int = 0
    losing: int = 0
    gross_profit: Decimal = _ZERO
    gross_loss: Decimal = _ZERO
    realized_pnl: Decimal = _ZERO
    fees: Decimal = _ZERO
    volume: Decimal = _ZERO
    closed_cost: Decimal = _ZERO
    results: int = 0
    result_sum: Decimal = _ZERO
    result_squares: Decimal = _ZERO
    net: Decimal = _ZERO
    peak: Decimal = _ZERO
    max_drawdown: Decimal = _ZERO

    def add(
        self, realized: Decimal, reduced_cost: Decimal, fee: Decimal, notional: Decimal
    ) -> None:
        """Fold one fill: what it realized, the cost basis it reduced, its fee and notional."""
        add = EXACT.add
        self.trades += 1
        self.fees = add(self.fees, fee)
        self.volume = add(self.volume, notional)
        if reduced_cost:
            self.closed_cost = add(self.closed_cost, reduced_cost)
            self.results += 1
            self.result_sum = add(self.result_sum, realized)
            self.result_squares = add(self.result_squares, EXACT.multiply(realized, realized))
        if realized > 0:
            self.winning += 1
            self.gross_profit = add(self.gross_profit, realized)
        elif realized < 0:
            self.losing += 1
            self.gross_loss = EXACT.subtract(self.gross_loss, realized)
        self.realized_pnl = add(self.realized_pnl, realized)
        self.net = EXACT.subtract(add(self.net, realized), fee)
        self.peak = max(self.peak, self.net)
        drawdown = EXACT.subtract(self.peak, self.net)
        self.max_drawdown = max(self.max_drawdown, drawdown)

    def sharpe_ratio(self) -> Decimal | None:
        """Mean over sample standard deviation of the reducing fills' results (per trade,
        not annualized); None below two results or with no spread."""
        n = self.results
        if n < 2:
            return None
        mean_square = EXACT.divide(EXACT.multiply(self.result_sum, self.result_sum), n)
        variance = EXACT.divide(EXACT.subtract(self.result_squares, mean_square), n - 1)
        if variance <= 0:
            return None
        deviation = variance.sqrt(_ROOT)
        return _quotient(EXACT.divide(self.result_sum, n), deviation)

    def figures(self) -> dict[str, Figure]:
        """Every published figure, by its read-model field name."""
        decided = self.winning + self.losing
        return {
            "total_trades": self.trades,
            "winning_trades": self.winning,
            "losing_trades": self.losing,
            "win_rate": _quotient(Decimal(self.winning), Decimal(decided)),
            "avg_win": _quotient(self.gross_profit, Decimal(self.winning)),
            "avg_loss": _quotient(self.gross_loss, Decimal(self.losing)),
            "profit_factor": _quotient(self.gross_profit, self.gross_loss),
            "max_drawdown": self.max_drawdown,
            "sharpe_ratio": self.sharpe_ratio(),
            "total_return": _quotient(self.realized_pnl, self.closed_cost),
            "realized_pnl": self.realized_pnl,
            "net_pnl": self.net,
            "fees": self.fees,
            "volume": self.volume,
        }

    def to_state(self) -> dict[str, str | int]:
        """The exact running sums as JSON-safe values (decimals as strings)."""
        return {
            f.name: value if isinstance(value := getattr(self, f.name), int) else str(value)
            for f in fields(self)
        }

    @classmethod
    def from_state(cls, state: dict[str, str | int] | None) -> Tally:
        """The tally ``to_state`` wrote (a fresh one for None)."""
        if not state:
            return cls()
        values: dict[str, Decimal | int] = {}
        for f in fields(cls):
            raw = state[f.name]
            values[f.name] = raw if isinstance(raw, int) else Decimal(raw)
        return cls(**values)  # type: ignore[arg-type]
