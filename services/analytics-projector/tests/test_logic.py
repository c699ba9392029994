"""The read models' pure parts: the bot fold, portfolio snapshots, runs (no server)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import bson
from fleet_trading.metrics import Tally

from analytics_projector.documents import day_of
from analytics_projector.executions import RECENT_TRADES, Run, RunFill
from analytics_projector.performance import BotBook, fold_fills
from analytics_projector.portfolio import DayFlows, snapshots
from analytics_projector.replay import canonical
from fleet_events import Side

from .conftest import T0, fill

DAY = timedelta(days=1)


def test_a_bots_fold_continues_from_its_stored_state_exactly() -> None:
    fills = [
        fill("t1", quantity="2", price="100", at=T0).data,
        fill("t2", side=Side.SELL, quantity="3", price="110", at=T0 + DAY).data,  # +20, short 1
        fill("t3", symbol="ETH", quantity="1", price="10", at=T0 + DAY).data,
        fill("t4", quantity="1", price="105", at=T0 + 2 * DAY).data,  # short closed: +5
    ]
    whole_days: dict[str, Tally] = {}
    whole = BotBook("bot-1")
    folded = fold_fills(whole, fills, whole_days)
    assert [f.realized for f in folded] == [0, 20, 0, 5]
    # The same fills in two batches, through the stored state, give the same book.
    split_days: dict[str, Tally] = {}
    first = BotBook("bot-1")
    fold_fills(first, fills[:2], split_days)
    again = BotBook.from_state("bot-1", first.to_state())
    fold_fills(again, fills[2:], split_days)
    assert again.tally == whole.tally
    assert again.positions == whole.positions
    assert split_days == whole_days
    assert sorted(whole_days) == [day_of(T0), day_of(T0 + DAY), day_of(T0 + 2 * DAY)]
    assert whole_days[day_of(T0 + DAY)].realized_pnl == 20
    assert list(whole.positions) == [("user-1", "ETH")]


def test_snapshots_price_by_the_days_close_and_carry_holdings_over_quiet_days() -> None:
    day0 = day_of(T0)
    flows = DayFlows("u", day0)
    flows.add(fill("t1", quantity="2", price="100", fee="1", user_id="u", at=T0).data)
    day2 = day_of(T0 + 2 * DAY)
    closes = {"BTCUSDT": [(day0, Decimal(101)), (day2, Decimal(90))]}
    docs = snapshots("u", [flows], closes, since=day0, until=day2)
    values = [(d["total_value"].to_decimal(), d["total_pnl"].to_decimal()) for d in docs]
    # Day 1 has no candle: the last close before it (day 0's) prices the holding.
    assert values == [(202, 1), (202, 1), (180, -21)]
    assert [d["performance_metrics"]["trades"] for d in docs] == [1, 0, 0]
    assert docs[0]["total_pnl_percent"].to_decimal() == Decimal("0.5")
    assert snapshots("u", [], closes, since=day0, until=day2) == []


def test_a_runs_recompute_equals_adding_its_fills_one_by_one() -> None:
    start = T0
    run = Run("bot-1:2", "bot-1", "d1", 2, start, end_time=start + timedelta(hours=1))
    fills = [
        RunFill(
            seq,
            start + timedelta(minutes=seq),
            f"t{seq}",
            "BTC",
            "BUY",
            Decimal(1),
            Decimal(10),
            Decimal("0.1"),
            Decimal(seq % 5 - 2),
            Decimal(10),
            Decimal(10),
        )
        for seq in range(1, 90)
    ]
    inside = [f for f in fills if run.contains(f.executed_at)]
    for f in inside:
        run.add(f)
    incremental = (run.tally, sorted(run.recent))
    run.recompute(reversed(fills))
    assert (run.tally, sorted(run.recent)) == incremental
    assert run.tally.trades == 59  # minutes 1..59: the end is excluded
    assert len(run.document()["trades"]) == RECENT_TRADES
    assert Run.from_document(run.document()).tally == run.tally


def test_the_replay_compares_documents_whatever_the_order_of_their_fields() -> None:
    # A bot event first creates the document with one field order, a trade first another.
    bots_first = {
        "_id": "b",
        "name": "x",
        "state": {"tally": {"n": 1, "a": "2"}},
        "p": [{"z": 1, "y": 2}],
    }
    trades_first = {
        "state": {"tally": {"a": "2", "n": 1}},
        "_id": "b",
        "p": [{"y": 2, "z": 1}],
        "name": "x",
    }
    assert bson.encode(bots_first) != bson.encode(trades_first)
    assert bson.encode(canonical(bots_first)) == bson.encode(canonical(trades_first))
    # Array order is part of the value.
    assert canonical({"p": [1, 2]}) != canonical({"p": [2, 1]})
