"""Performance figures: definitions on known histories, and the undefined cases (no NaN)."""

from __future__ import annotations

from decimal import Decimal

from fleet_trading.metrics import Tally

D = Decimal


def tally_of(*results: tuple[str, str, str]) -> Tally:
    """A tally of fills given as (realized, reduced cost, fee), notional 100 each."""
    tally = Tally()
    for realized, cost, fee in results:
        tally.add(D(realized), D(cost), D(fee), D(100))
    return tally


def test_an_empty_history_has_counts_of_zero_and_no_ratios() -> None:
    figures = Tally().figures()
    assert figures["total_trades"] == 0
    assert figures["realized_pnl"] == 0
    assert figures["max_drawdown"] == 0
    for name in ("win_rate", "avg_win", "avg_loss", "profit_factor", "sharpe_ratio"):
        assert figures[name] is None, name
    assert figures["total_return"] is None


def test_an_all_winning_history_has_no_profit_factor_rather_than_infinity() -> None:
    figures = tally_of(("5", "100", "0"), ("7", "100", "0")).figures()
    assert figures["win_rate"] == D(1)
    assert figures["avg_loss"] is None
    assert figures["profit_factor"] is None
    assert figures["max_drawdown"] == 0


def test_known_history() -> None:
    # Opening fill (nothing realized, fee 1), then +10, -4, -6, +2 (fee 0.5 each).
    tally = tally_of(
        ("0", "0", "1"),
        ("10", "100", "0.5"),
        ("-4", "50", "0.5"),
        ("-6", "50", "0.5"),
        ("2", "100", "0.5"),
    )
    f = tally.figures()
    assert (f["total_trades"], f["winning_trades"], f["losing_trades"]) == (5, 2, 2)
    assert f["win_rate"] == D("0.5")
    assert f["avg_win"] == D(6)
    assert f["avg_loss"] == D(5)
    assert f["profit_factor"] == D("1.2")
    assert f["realized_pnl"] == D(2)
    assert f["fees"] == D(3)
    assert f["net_pnl"] == D(-1)
    assert f["volume"] == D(500)
    # Net after each fill: -1, 8.5, 4, -2.5, -1: peak 8.5, lowest after it -2.5.
    assert f["max_drawdown"] == D(11)
    assert f["total_return"] == D("0.0066666667")  # 2 / 300, half-even to 10 places
    # Results 10, -4, -6, 2: mean 0.5, sample sd sqrt(155/3) = 7.1879...
    assert f["sharpe_ratio"] == D("0.0695608344")


def test_one_result_or_no_spread_has_no_sharpe_ratio() -> None:
    assert tally_of(("3", "10", "0")).sharpe_ratio() is None
    assert tally_of(("3", "10", "0"), ("3", "10", "0")).sharpe_ratio() is None


def test_state_round_trip_is_exact() -> None:
    tally = tally_of(("0.000000000000000001", "3", "0.1"), ("-123456789.123456789", "1", "0"))
    again = Tally.from_state(tally.to_state())
    assert again == tally
    assert Tally.from_state(None) == Tally()
