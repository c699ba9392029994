"""The average-cost fold's per-fill results: pure, no server."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from fleet_trading import FillResult, apply_fills

from fleet_events import Side


@dataclass(frozen=True)
class F:
    trade_id: str
    side: Side
    quantity: Decimal
    price: Decimal
    fee: Decimal = Decimal(0)
    executed_at: datetime = datetime(2026, 1, 1, tzinfo=UTC)


def test_results_give_each_fills_realized_pnl_and_reduced_cost() -> None:
    fills = [
        F("1", Side.BUY, Decimal(2), Decimal(10)),  # long 2 @10
        F("2", Side.SELL, Decimal(3), Decimal(13)),  # +6 on 2 closed, short 1 @13
        F("3", Side.BUY, Decimal("0.5"), Decimal(15)),  # -1 on 0.5 of the short
    ]
    results: list[FillResult] = []
    positions = apply_fills(None, fills, key=("u", "b", "S"), results=results)
    assert results == [
        (Decimal(0), Decimal(0)),
        (Decimal(6), Decimal(20)),
        (Decimal(-1), Decimal("6.5")),
    ]
    # The results add up to the realized PnL the positions carry.
    assert sum(r[0] for r in results) == sum(p.realized_pnl for p in positions)


def test_keyless_plain_fills_need_a_key() -> None:
    with pytest.raises(TypeError, match="key="):
        apply_fills(None, [F("1", Side.BUY, Decimal(1), Decimal(1))])
