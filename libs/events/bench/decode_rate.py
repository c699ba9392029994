"""Measure encode/decode rates of a trade.executed event (run: uv run python <this file>)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

from fleet_events import Side, TradeExecuted, decode, decode_as, encode, new_event

N = 200_000


def rate(name: str, fn: Callable[[bytes], object], raw: bytes) -> None:
    """Print messages per second of ``fn`` over ``N`` calls."""
    fn(raw)
    start = time.perf_counter()
    for _ in range(N):
        fn(raw)
    elapsed = time.perf_counter() - start
    print(f"{name:<28} {N / elapsed:>10,.0f} msg/s  {elapsed / N * 1e6:6.2f} us/msg")


def main() -> None:
    """Run the measurements."""
    trade = TradeExecuted(
        trade_id="t-1",
        order_id="o-1",
        bot_id="0b9d6a52-3f0e-4c1e-9a57-3c9c2f6f1a10",
        user_id="u-42",
        symbol="BTCUSDT",
        side=Side.BUY,
        quantity=Decimal("0.3"),
        price=Decimal("64000.12345678"),
        fee=Decimal("0.00001"),
        fee_currency="BNB",
        executed_at=datetime(2024, 5, 1, tzinfo=UTC),
    )
    event = new_event(trade, source="trade-sim")
    raw = encode(event)
    print(f"trade.executed: {len(raw)} bytes")
    rate("decode", decode, raw)
    rate("decode_as(TradeExecuted)", lambda r: decode_as(r, TradeExecuted), raw)
    rate("json.loads (reference)", json.loads, raw)
    rate("encode", lambda _r: encode(event), raw)


if __name__ == "__main__":
    main()
