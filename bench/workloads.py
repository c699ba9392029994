"""The events every measurement of one worker runs on: generated once, encoded once."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from fleet_events import (
    BOTS_STREAM,
    MARKET_STREAM,
    TRADES_STREAM,
    BotCreated,
    BotDeployed,
    BotStarted,
    BotStopped,
    MarketTick,
    Side,
    TradeExecuted,
    encode,
    new_event,
    subject_for,
)


@dataclass(frozen=True)
class Workload:
    """Pre-encoded messages for one stream: (subject, payload, msg id)."""

    name: str
    stream: str
    messages: list[tuple[str, bytes, str]]

    def __len__(self) -> int:
        return len(self.messages)


def trade_fills(n: int, seed: int = 1, start: datetime | None = None) -> Workload:
    """``n`` fills over 100 bots and 5 symbols, random sides and sizes, 1 ms apart."""
    rng = random.Random(seed)
    symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT"]
    start = start or datetime(2026, 1, 5, tzinfo=UTC)
    out = []
    for i in range(n):
        bot = rng.randrange(100)
        qty = Decimal(rng.randint(1, 10_000)) / Decimal(1000)
        price = Decimal(rng.randint(90_000, 110_000)) / Decimal(100)
        event = new_event(
            TradeExecuted(
                trade_id=f"bench-{seed}-{i}",
                order_id=f"o-{seed}-{i}",
                bot_id=f"bot-{bot}",
                user_id=f"user-{bot % 10}",
                symbol=symbols[bot % len(symbols)],
                side=Side.BUY if rng.random() < 0.5 else Side.SELL,
                quantity=qty,
                price=price,
                fee=(qty * price / 1000).quantize(Decimal("0.00000001")),
                fee_currency="USDT",
                executed_at=start + timedelta(milliseconds=i),
            ),
            source="bench",
        )
        out.append((subject_for(event), encode(event), str(event.id)))
    return Workload("trade fills", TRADES_STREAM, out)


def recent_trade_fills(n: int, seed: int = 1) -> Workload:
    """``trade_fills`` from today's UTC midnight on.

    A store with a TTL index on the event time (analytics-projector keeps trade events 90
    days) deletes older fills while the benchmark runs, and that sweep competes with the
    worker's writes: recent fills keep it out of the measurement.
    """
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return trade_fills(n, seed, today)


def market_ticks(n: int, seed: int = 1) -> Workload:
    """``n`` ticks over 10 symbols, 1 ms apart (many candle periods of every interval)."""
    rng = random.Random(seed)
    symbols = [f"SYM{k}USDT" for k in range(10)]
    prices = {s: Decimal(100 + 10 * k) for k, s in enumerate(symbols)}
    start = datetime(2026, 1, 5, tzinfo=UTC)
    out = []
    for i in range(n):
        sym = symbols[rng.randrange(len(symbols))]
        prices[sym] = max(prices[sym] + Decimal(rng.randint(-50, 50)) / 100, Decimal("0.01"))
        event = new_event(
            MarketTick(
                symbol=sym,
                price=prices[sym],
                quantity=Decimal(rng.randint(1, 5000)) / 1000,
                timestamp=start + timedelta(milliseconds=i * 37),
                is_buyer_maker=rng.random() < 0.5,
                trade_id=f"x{i}",
            ),
            source="bench",
        )
        out.append((subject_for(event), encode(event), str(event.id)))
    return Workload("market ticks", MARKET_STREAM, out)


def bot_lifecycles(n: int, seed: int = 1) -> Workload:
    """``n`` bot events: bots created, deployed, started and stopped (4 events a bot)."""
    start = datetime(2026, 1, 5, tzinfo=UTC)
    out = []
    for b in range(n // 4):
        bot = f"bench-bot-{seed}-{b}"
        dep = f"dep-{seed}-{b}"
        at = start + timedelta(milliseconds=b)
        for payload in (
            BotCreated(
                bot_id=bot,
                version=1,
                user_id=f"user-{b % 50}",
                name=f"bot {b}",
                type="realtime",
                config={"grid": 10},
                tags=["bench"],
                max_position_size=Decimal("5"),
            ),
            BotDeployed(bot_id=bot, version=2, deployment_id=dep, runtime="python3.11"),
            BotStarted(bot_id=bot, version=3, deployment_id=dep),
            BotStopped(bot_id=bot, version=4, deployment_id=dep, reason="bench"),
        ):
            event = new_event(payload, source="bench", time=at)
            out.append((subject_for(event), encode(event), str(event.id)))
    return Workload("bot lifecycles", BOTS_STREAM, out)
