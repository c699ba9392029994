"""Position math and event splitting: pure functions, no server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import uuid4

from fleet_events import Side
from trade_recorder.logic import Fill, OrderOutcome, apply_fill, apply_fills, first_outcomes

T0 = datetime(2025, 1, 2, tzinfo=UTC)


def fill(
    side: Side, quantity: str, price: str, fee: str = "0", n: int = 1, trade_id: str | None = None
) -> Fill:
    return Fill(
        trade_id=trade_id or f"t{n}",
        order_id=f"o{n}",
        bot_id="b",
        user_id="u",
        symbol="ETHUSDT",
        side=side,
        price=Decimal(price),
        quantity=Decimal(quantity),
        fee=Decimal(fee),
        fee_currency="USDT",
        executed_at=T0 + timedelta(seconds=n),
        event_id=uuid4(),
        stream_seq=n,
    )


def test_first_fill_opens_a_long_at_the_fill_price() -> None:
    [pos] = apply_fill(None, fill(Side.BUY, "2", "100", fee="0.1"))
    assert (pos.side, pos.quantity, pos.average_entry_price) == ("LONG", Decimal(2), Decimal(100))
    assert (pos.fees, pos.realized_pnl, pos.fill_count) == (Decimal("0.1"), Decimal(0), 1)
    assert pos.is_open
    assert pos.opened_at == T0 + timedelta(seconds=1)


def test_adding_averages_the_entry_price_to_18_places() -> None:
    [pos] = apply_fill(None, fill(Side.BUY, "1", "100"))
    [pos] = apply_fill(pos, fill(Side.BUY, "2", "101", n=2))
    assert pos.quantity == Decimal(3)
    assert pos.average_entry_price == Decimal("100.666666666666666667")
    assert pos.max_quantity == Decimal(3)


def test_reducing_a_long_realizes_pnl_and_keeps_the_average() -> None:
    [pos] = apply_fill(None, fill(Side.BUY, "3", "100"))
    [pos] = apply_fill(pos, fill(Side.SELL, "1.5", "110.5", fee="0.25", n=2))
    assert pos.quantity == Decimal("1.5")
    assert pos.realized_pnl == Decimal("15.75")
    assert pos.average_entry_price == Decimal(100)
    assert pos.fees == Decimal("0.25")
    assert pos.is_open


def test_a_short_profits_when_the_price_falls() -> None:
    [pos] = apply_fill(None, fill(Side.SELL, "2", "50"))
    assert pos.side == "SHORT"
    [pos] = apply_fill(pos, fill(Side.BUY, "2", "45", n=2))
    assert pos.realized_pnl == Decimal(10)
    assert pos.quantity == 0
    assert not pos.is_open
    assert pos.closed_at == T0 + timedelta(seconds=2)


def test_crossing_zero_closes_and_flips_with_the_remainder_at_the_fill_price() -> None:
    [pos] = apply_fill(None, fill(Side.BUY, "1", "100"))
    closed, flipped = apply_fill(pos, fill(Side.SELL, "3", "90", fee="0.3", n=2))
    assert (closed.quantity, closed.realized_pnl, closed.fees) == (0, Decimal(-10), Decimal("0.3"))
    assert not closed.is_open
    assert closed.fill_count == 2
    assert (flipped.side, flipped.quantity, flipped.average_entry_price) == (
        "SHORT",
        Decimal(2),
        Decimal(90),
    )
    assert flipped.fees == 0
    assert flipped.realized_pnl == 0
    assert flipped.is_open


def test_apply_fills_lists_each_position_once_in_its_final_state() -> None:
    fills = [
        fill(Side.BUY, "1", "10", n=1),
        fill(Side.SELL, "2", "12", n=2),  # close long (+2), open short 1 @12
        fill(Side.SELL, "1", "14", n=3),  # short 2 @13
        fill(Side.BUY, "2", "11", n=4),  # close short (+4), flat
        fill(Side.BUY, "1", "20", n=5),  # new long
    ]
    positions = apply_fills(None, fills)
    assert [(p.side, p.is_open) for p in positions] == [
        ("LONG", False),
        ("SHORT", False),
        ("LONG", True),
    ]
    assert [p.realized_pnl for p in positions] == [Decimal(2), Decimal(4), Decimal(0)]
    assert positions[1].average_entry_price == Decimal(13)
    assert positions[1].max_quantity == Decimal(2)


def test_apply_fills_updates_the_stored_position_in_place() -> None:
    [stored] = apply_fill(None, fill(Side.BUY, "1", "10"))
    stored = stored.__class__(**{**_fields(stored), "id": 7})
    [pos] = apply_fills(stored, [fill(Side.BUY, "1", "20", n=2), fill(Side.SELL, "1", "30", n=3)])
    assert pos.id == 7
    assert pos.quantity == 1
    assert pos.realized_pnl == Decimal(15)


def _fields(obj: object) -> dict[str, object]:
    return {name: getattr(obj, name) for name in obj.__slots__}  # type: ignore[attr-defined]


def test_first_outcome_per_order_wins() -> None:
    def outcome(order: str, status: str) -> OrderOutcome:
        return OrderOutcome(order, "b", "u", "S", status, T0)  # type: ignore[arg-type]

    kept = first_outcomes(
        [outcome("a", "failed"), outcome("b", "completed"), outcome("a", "completed")]
    )
    assert [(o.order_id, o.status) for o in kept] == [("a", "failed"), ("b", "completed")]
