"""The traffic a chaos scenario publishes: bots, fills and ticks under its own keys.

Every scenario uses keys no other scenario touches (bot ids ``<tag>-b<n>``, symbols
``<TAG>S<n>``), so one set of workers and stores serves the whole suite and each
scenario is reconciled on its own keys. Bot events follow the state machine
(created, deployed, started, stopped, deployed, ...) so none is refused; tick times
only move forward per symbol, so no tick is late.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import uuid4

from fleet_events import (
    BotCreated,
    BotDeployed,
    BotStarted,
    BotStopped,
    Event,
    MarketTick,
    Side,
    TradeExecuted,
    encode,
    new_event,
    subject_for,
)

T0 = datetime(2024, 6, 3, tzinfo=UTC)
FILLS_AGO = timedelta(days=1)
"""Fills are executed from a day before the run on: analytics-projector's trading_events
expire 90 days after their execution time (a TTL index), and the reconciler counts them."""
SOURCE = "fleet-chaos"
BAD_KINDS = ("bad-json", "wrong-type", "schema-violation", "unknown-version")


@dataclass(frozen=True)
class Message:
    """One message to publish: its bytes, its ``Nats-Msg-Id``, and what it is."""

    subject: str
    data: bytes
    msg_id: str
    event: Event[Any] | None
    """The event it carries (None for a malformed message)."""
    bad: str | None = None
    """Which kind of malformed message it is (one of ``BAD_KINDS``), None when valid."""

    @classmethod
    def of(cls, event: Event[Any]) -> Message:
        """A valid event, deduplicated by its own id."""
        return cls(subject_for(event), encode(event), str(event.id), event)


@dataclass(frozen=True)
class Mix:
    """What share of the traffic is injected: copies and malformed messages."""

    duplicate_same_id: float = 0.0
    """Share of events published a second time under the same ``Nats-Msg-Id``."""
    duplicate_new_id: float = 0.0
    """Share of fills and bot events re-sent as a new event (new id) with the same
    business key: the stream stores both, the worker must apply one."""
    malformed: float = 0.0
    """Share of messages that are not valid events."""


class Workload:
    """Generates a scenario's messages in publish order (deterministic for a seed, fill
    times apart: they count from the day before the run)."""

    def __init__(self, tag: str, *, seed: int, mix: Mix, bots: int = 6, symbols: int = 3) -> None:
        self.tag = tag
        self._rng = random.Random(seed)  # noqa: S311 - reproducible traffic, not secrets
        self._mix = mix
        self._bots = [f"{tag}-b{n}" for n in range(bots)]
        self._symbols = [f"{tag.upper()}S{n}" for n in range(symbols)]
        self._bot_version = dict.fromkeys(self._bots, 0)
        self._deployments = dict.fromkeys(self._bots, 0)
        self._tick_at = dict.fromkeys(self._symbols, T0)
        self._price = {s: Decimal(100 + 50 * n) for n, s in enumerate(self._symbols)}
        self._trades = 0
        self._fills_t0 = datetime.now(UTC).replace(microsecond=0) - FILLS_AGO
        self._bad = 0
        self._count = 0

    @property
    def bot_prefix(self) -> str:
        """The prefix of every bot id of this scenario (fills carry these bot ids too)."""
        return f"{self.tag}-b"

    @property
    def symbols(self) -> list[str]:
        """The tick symbols of this scenario."""
        return list(self._symbols)

    def next(self) -> list[Message]:
        """The next message, followed by its injected copy when the mix says so."""
        self._count += 1
        # Exactly the share asked for, spread evenly: every (1/share)-th message.
        if self._mix.malformed and self._count % round(1 / self._mix.malformed) == 0:
            return [self._malformed()]
        pick = self._rng.random()
        if pick < 0.15:
            event = self._bot_event()
        elif pick < 0.6:
            event = self._fill()
        else:
            event = self._tick()
        out = [Message.of(event)]
        if self._rng.random() < self._mix.duplicate_same_id:
            out.append(out[0])
        elif event.type != "market.tick" and self._rng.random() < self._mix.duplicate_new_id:
            out.append(Message.of(_copy(event)))
        return out

    def _bot_event(self) -> Event[Any]:
        bot = self._rng.choice(self._bots)
        version = self._bot_version[bot] + 1
        self._bot_version[bot] = version
        at = T0 + timedelta(minutes=version)
        deployment = f"{bot}-d{self._deployments[bot]}"
        # created, then deployed/started/stopped round and round.
        step = 0 if version == 1 else (version - 2) % 3 + 1
        payload: Any
        if step == 0:
            payload = BotCreated(
                bot_id=bot,
                version=1,
                user_id=f"{self.tag}-u",
                name=f"{bot} grid",
                type="scheduled",
                config={"grid": 10},
            )
        elif step == 1:
            self._deployments[bot] += 1
            deployment = f"{bot}-d{self._deployments[bot]}"
            payload = BotDeployed(
                bot_id=bot,
                version=version,
                deployment_id=deployment,
                runtime="python3.11",
                image="bots/grid:1",
            )
        elif step == 2:
            payload = BotStarted(bot_id=bot, version=version, deployment_id=deployment)
        else:
            payload = BotStopped(
                bot_id=bot, version=version, deployment_id=deployment, reason="chaos"
            )
        return new_event(payload, source=SOURCE, time=at)

    def _fill(self) -> Event[Any]:
        n = self._trades
        self._trades += 1
        return new_event(
            TradeExecuted(
                trade_id=f"{self.tag}-t{n}",
                order_id=f"{self.tag}-o{n // 3}",
                bot_id=self._rng.choice(self._bots),
                user_id=f"{self.tag}-u",
                symbol=self._rng.choice(("BTCUSDT", "ETHUSDT")),
                side=self._rng.choice((Side.BUY, Side.SELL)),
                quantity=Decimal(self._rng.randint(1, 400)) / 100,
                price=Decimal(self._rng.randint(20_000, 21_000)),
                fee=Decimal(self._rng.randint(0, 9)) / 1000,
                fee_currency="USDT",
                executed_at=self._fills_t0 + timedelta(seconds=n),
            ),
            source=SOURCE,
        )

    def _tick(self) -> Event[Any]:
        symbol = self._rng.choice(self._symbols)
        self._tick_at[symbol] += timedelta(milliseconds=self._rng.randint(200, 4000))
        self._price[symbol] = max(
            Decimal("0.01"), self._price[symbol] + Decimal(self._rng.randint(-100, 100)) / 100
        )
        return new_event(
            MarketTick(
                symbol=symbol,
                price=self._price[symbol],
                quantity=Decimal(self._rng.randint(1, 5000)) / 1000,
                timestamp=self._tick_at[symbol],
                is_buyer_maker=self._rng.random() < 0.5,
            ),
            source=SOURCE,
        )

    def _malformed(self) -> Message:
        kind = BAD_KINDS[self._bad % len(BAD_KINDS)]
        self._bad += 1
        # The bad message goes where a valid one of the same family would.
        family = self._rng.choice(("bot", "fill", "tick"))
        if family == "bot":
            # A fresh bot id: a malformed message never uses up a real bot's version.
            base = new_event(
                BotCreated(
                    bot_id=f"{self.tag}-x{self._bad}",
                    version=1,
                    user_id=f"{self.tag}-u",
                    name="bad",
                    type="scheduled",
                    config={},
                ),
                source=SOURCE,
            )
        elif family == "fill":
            base = self._fill()
        else:
            base = self._tick()
        subject = subject_for(base)
        doc: dict[str, Any] = json.loads(encode(base))
        if kind == "bad-json":
            data = encode(base)[:-7]
        elif kind == "wrong-type":
            doc["type"] = doc["type"] + "-unknown"
            data = json.dumps(doc).encode()
        elif kind == "schema-violation":
            # A required field missing, and a decimal sent as a JSON number.
            doc["data"].pop(next(iter(doc["data"])))
            doc["data"]["price"] = 1.5
            data = json.dumps(doc).encode()
        else:
            doc["schema_version"] = 99
            data = json.dumps(doc).encode()
        return Message(subject, data, str(uuid4()), None, bad=kind)


def _copy(event: Event[Any]) -> Event[Any]:
    """The same fact under a new event id (a producer that re-sends after a crash)."""
    return new_event(event.data, source=SOURCE, time=event.time)
