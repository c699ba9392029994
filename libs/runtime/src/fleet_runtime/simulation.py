"""A deterministic market simulator: bots going through their lifecycle, fills and ticks.

Pure: it produces events, it does not publish them. ``fleet dev up`` publishes what it
produces; tests and the benchmark harness use it to get realistic, reproducible traffic.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from fleet_events import (
    BotCreated,
    BotDeployed,
    BotStarted,
    BotStopped,
    Event,
    MarketTick,
    Side,
    TradeCompleted,
    TradeExecuted,
    new_event,
)

SOURCE = "fleet-simulator"
_CENT = Decimal("0.01")
_LOT = Decimal("0.0001")


@dataclass
class _Bot:
    bot_id: str
    user_id: str
    symbol: str
    version: int = 1
    deployment_id: str | None = None
    running: bool = False


@dataclass
class MarketSimulator:
    """Generates bot, trade and tick events with a seeded random walk per symbol."""

    seed: int = 7
    symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
    bots: int = 6
    _rng: random.Random = field(init=False)
    _prices: dict[str, Decimal] = field(init=False)
    _bots: list[_Bot] = field(init=False)
    _fills: int = field(init=False, default=0)
    _ticks: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        # Reproducible market noise, not secrets.
        self._rng = random.Random(self.seed)  # noqa: S311
        start = {"BTCUSDT": "67000", "ETHUSDT": "3500", "SOLUSDT": "150"}
        self._prices = {s: Decimal(start.get(s, "100")) for s in self.symbols}
        self._bots = [
            _Bot(
                bot_id=f"bot-{self.seed}-{i}",
                user_id=f"user-{i % 3}",
                symbol=self.symbols[i % len(self.symbols)],
            )
            for i in range(self.bots)
        ]

    def opening(self, now: datetime | None = None) -> list[Event[Any]]:
        """Create, deploy and start every bot."""
        now = now or datetime.now(UTC)
        events: list[Event[Any]] = []
        for bot in self._bots:
            events.append(
                self._emit(
                    BotCreated(
                        bot_id=bot.bot_id,
                        version=bot.version,
                        user_id=bot.user_id,
                        name=f"grid {bot.symbol} #{bot.bot_id[-1]}",
                        type="realtime",
                        description="simulated grid bot",
                        config={"symbol": bot.symbol, "grid": 10},
                        tags=["simulated"],
                        risk_level=2,
                        max_position_size=Decimal("5"),
                    ),
                    now,
                )
            )
            events.extend(self._deploy_and_start(bot, now))
        return events

    def step(self, n: int, now: datetime | None = None) -> list[Event[Any]]:
        """At least ``n`` events: mostly ticks, some fills, now and then a bot stop/restart."""
        now = now or datetime.now(UTC)
        out: list[Event[Any]] = []
        while len(out) < n:
            roll = self._rng.random()
            if roll < 0.75:
                out.append(self._tick(now))
            elif roll < 0.995:
                out.extend(self._fill(now))
            else:
                out.extend(self._toggle_bot(now))
        return out

    def stream(self, batch: int = 100) -> Iterator[list[Event[Any]]]:
        """Endless batches of ``step(batch)``, after the opening events."""
        yield self.opening()
        while True:
            yield self.step(batch)

    # -- generators -----------------------------------------------------------------

    def _emit(self, payload: Any, now: datetime) -> Event[Any]:
        return new_event(payload, source=SOURCE, time=now)

    def _deploy_and_start(self, bot: _Bot, now: datetime) -> list[Event[Any]]:
        bot.version += 1
        bot.deployment_id = f"dep-{bot.bot_id}-{bot.version}"
        deployed = self._emit(
            BotDeployed(
                bot_id=bot.bot_id,
                version=bot.version,
                deployment_id=bot.deployment_id,
                runtime="python3.11",
                image="tradefleet/bot-runner:1",
                resources={"cpu": "250m", "memory": "256Mi"},
                environment={"MODE": "paper"},
            ),
            now,
        )
        bot.version += 1
        started = self._emit(
            BotStarted(bot_id=bot.bot_id, version=bot.version, deployment_id=bot.deployment_id), now
        )
        bot.running = True
        return [deployed, started]

    def _toggle_bot(self, now: datetime) -> list[Event[Any]]:
        bot = self._rng.choice(self._bots)
        if bot.running and bot.deployment_id is not None:
            bot.version += 1
            bot.running = False
            return [
                self._emit(
                    BotStopped(
                        bot_id=bot.bot_id,
                        version=bot.version,
                        deployment_id=bot.deployment_id,
                        reason="simulated pause",
                    ),
                    now,
                )
            ]
        if bot.deployment_id is not None:
            bot.version += 1
            bot.running = True
            return [
                self._emit(
                    BotStarted(
                        bot_id=bot.bot_id, version=bot.version, deployment_id=bot.deployment_id
                    ),
                    now,
                )
            ]
        return []

    def _walk(self, symbol: str) -> Decimal:
        price = self._prices[symbol]
        move = Decimal(str(round(self._rng.gauss(0, 0.0008), 6)))
        price = max((price * (1 + move)).quantize(_CENT), _CENT)
        self._prices[symbol] = price
        return price

    def _tick(self, now: datetime) -> Event[Any]:
        self._ticks += 1
        symbol = self._rng.choice(self.symbols)
        qty = (Decimal(self._rng.randint(1, 50_000)) * _LOT).quantize(_LOT)
        return self._emit(
            MarketTick(
                symbol=symbol,
                price=self._walk(symbol),
                quantity=qty,
                timestamp=now,
                is_buyer_maker=self._rng.random() < 0.5,
                trade_id=f"x{self.seed}-{self._ticks}",
            ),
            now,
        )

    def _fill(self, now: datetime) -> list[Event[Any]]:
        running = [b for b in self._bots if b.running]
        if not running:
            return [self._tick(now)]
        bot = self._rng.choice(running)
        self._fills += 1
        price = self._walk(bot.symbol)
        qty = (Decimal(self._rng.randint(1, 5_000)) * _LOT).quantize(_LOT)
        order_id = f"ord-{self.seed}-{self._fills}"
        fill = self._emit(
            TradeExecuted(
                trade_id=f"fill-{self.seed}-{self._fills}",
                order_id=order_id,
                bot_id=bot.bot_id,
                user_id=bot.user_id,
                symbol=bot.symbol,
                side=Side.BUY if self._rng.random() < 0.52 else Side.SELL,
                quantity=qty,
                price=price,
                fee=(qty * price * Decimal("0.001")).quantize(_CENT),
                fee_currency="USDT",
                executed_at=now,
            ),
            now,
        )
        done = self._emit(
            TradeCompleted(
                order_id=order_id,
                bot_id=bot.bot_id,
                user_id=bot.user_id,
                symbol=bot.symbol,
                filled_quantity=qty,
                average_price=price,
            ),
            now,
        )
        return [fill, done]
