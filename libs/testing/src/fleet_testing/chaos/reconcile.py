"""The reconciler: what each store must hold, computed from the acks alone, and the diff.

The expected state is recomputed here from the events the stream confirmed, with models
small enough to check by eye and written apart from the workers' code:

- trades: each trade id once; the open position per (bot, symbol) nets every fill.
- bots: one audit row per (bot, version), the first event of that version in stream
  order; the bot's final status and version are those of its highest version.
- ticks: per symbol, the last price in stream order; per one-minute candle, the number
  of ticks and their volume; the number of candles per interval.

Each store is read directly (SQL, Redis commands) and compared exactly: ``lost`` are
expected effects missing, ``doubled`` are effects present more often than expected (or
never expected), ``mismatched`` are derived figures (positions, statuses, prices, candle
counts and volumes) that differ.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

import asyncpg
from redis.asyncio import Redis

from fleet_testing.chaos.publisher import Acked

BOT_STATUS = {
    "bot.created": "created",
    "bot.deployed": "deployed",
    "bot.started": "running",
    "bot.stopped": "stopped",
}
CANDLE_WIDTHS_S = {"1m": 60, "5m": 300, "1h": 3600}


@dataclass(frozen=True)
class StoreCheck:
    """One store's comparison with its expected state."""

    store: str
    expected: int
    applied: int
    lost: int
    doubled: int
    mismatched: int
    notes: tuple[str, ...] = ()

    @property
    def exact(self) -> bool:
        """Nothing lost, nothing doubled, every derived figure equal."""
        return self.lost == 0 and self.doubled == 0 and self.mismatched == 0


def _valid(acks: list[Acked], prefix: str) -> list[Acked]:
    """Valid events whose type starts with ``prefix``, in stream order (``acks``: one per
    stored message, ``PublishLog.stored``)."""
    found = [
        a for a in acks if a.message.event is not None and a.message.event.type.startswith(prefix)
    ]
    return sorted(found, key=lambda a: a.seq)


async def check_trades(dsn: str, bot_prefix: str, acks: list[Acked]) -> StoreCheck:
    """trading.trades and open trading.positions against the acked fills."""
    expected: dict[str, Any] = {}
    net: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for ack in _valid(acks, "trade.executed"):
        assert ack.message.event is not None
        fill = ack.message.event.data
        if fill.trade_id in expected:
            continue  # the same fill re-sent under a new event id counts once
        expected[fill.trade_id] = fill
        sign = 1 if fill.side.value == "BUY" else -1
        net[(fill.bot_id, fill.symbol)] += sign * fill.quantity
    db = await asyncpg.connect(dsn)
    try:
        rows = await db.fetch(
            "SELECT trade_id, count(*) AS n FROM trading.trades WHERE bot_id LIKE $1 "
            "GROUP BY trade_id",
            bot_prefix + "%",
        )
        positions = await db.fetch(
            "SELECT bot_id, symbol, side, quantity FROM trading.positions "
            "WHERE is_open AND bot_id LIKE $1",
            bot_prefix + "%",
        )
    finally:
        await db.close()
    stored = {r["trade_id"]: int(r["n"]) for r in rows}
    lost = [t for t in expected if t not in stored]
    doubled = sum(n - 1 for n in stored.values()) + sum(
        n for t, n in stored.items() if t not in expected
    )
    held: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for p in positions:
        sign = 1 if p["side"] == "LONG" else -1
        held[(p["bot_id"], p["symbol"])] += sign * p["quantity"]
    keys = {k for k, v in net.items() if v} | set(held)
    wrong = sorted(k for k in keys if net.get(k, Decimal(0)) != held.get(k, Decimal(0)))
    notes = tuple(f"lost trade {t}" for t in lost[:3]) + tuple(
        f"position {b}/{s}: expected {net.get((b, s), 0)}, stored {held.get((b, s), 0)}"
        for b, s in wrong[:3]
    )
    return StoreCheck(
        "trades",
        len(expected),
        len(expected) - len(lost),
        len(lost),
        doubled,
        len(wrong),
        notes,
    )


async def check_bots(dsn: str, bot_prefix: str, acks: list[Acked]) -> StoreCheck:
    """lifecycle.audit_log and lifecycle.bots against the acked bot events."""
    first: dict[tuple[str, int], str] = {}
    final: dict[str, tuple[int, str]] = {}
    for ack in _valid(acks, "bot."):
        event = ack.message.event
        assert event is not None
        key = (event.data.bot_id, event.data.version)
        if key in first:
            continue  # a second event of the same version is a repeat: ignored
        first[key] = str(event.id)
        if event.data.version > final.get(event.data.bot_id, (0, ""))[0]:
            final[event.data.bot_id] = (event.data.version, BOT_STATUS[event.type])
    db = await asyncpg.connect(dsn)
    try:
        audit = await db.fetch(
            "SELECT event_id::text AS id FROM lifecycle.audit_log WHERE bot_id LIKE $1",
            bot_prefix + "%",
        )
        bots = await db.fetch(
            "SELECT id, version, status FROM lifecycle.bots WHERE id LIKE $1", bot_prefix + "%"
        )
    finally:
        await db.close()
    stored = Counter(r["id"] for r in audit)
    wanted = set(first.values())
    lost = [i for i in wanted if i not in stored]
    doubled = sum(n - 1 for n in stored.values()) + sum(
        n for i, n in stored.items() if i not in wanted
    )
    got = {r["id"]: (r["version"], r["status"]) for r in bots}
    wrong = sorted(b for b in set(final) | set(got) if final.get(b) != got.get(b))
    notes = tuple(f"bot {b}: expected {final.get(b)}, stored {got.get(b)}" for b in wrong[:3])
    return StoreCheck(
        "bots", len(wanted), len(wanted) - len(lost), len(lost), doubled, len(wrong), notes
    )


def _ms(ack: Acked) -> int:
    assert ack.message.event is not None
    stamp = ack.message.event.data.timestamp
    return int(stamp.timestamp() * 1000)


async def check_ticks(redis_url: str, symbols: list[str], acks: list[Acked]) -> StoreCheck:
    """Each symbol's ticker price and candles in Redis against the acked ticks."""
    per_symbol: dict[str, list[Acked]] = defaultdict(list)
    for ack in _valid(acks, "market.tick"):
        assert ack.message.event is not None
        per_symbol[ack.message.event.data.symbol].append(ack)
    redis = Redis.from_url(redis_url)
    expected_total = lost = doubled = applied = wrong = 0
    notes: list[str] = []
    try:
        for symbol in symbols:
            ticks = per_symbol.get(symbol, [])
            expected_total += len(ticks)
            minutes: dict[int, tuple[int, Decimal]] = {}
            for ack in ticks:
                assert ack.message.event is not None
                bucket = _ms(ack) // 60_000 * 60_000
                n, v = minutes.get(bucket, (0, Decimal(0)))
                minutes[bucket] = (n + 1, v + ack.message.event.data.quantity)
            raw = cast("list[bytes]", await redis.zrange(f"market:candles:1m:{symbol}", 0, -1))
            bars = {}
            for member in raw:
                bar = json.loads(member)
                bars[int(bar["t"])] = (int(bar["n"]), Decimal(bar["v"]))
            for bucket in minutes.keys() | bars.keys():
                want_n, want_v = minutes.get(bucket, (0, Decimal(0)))
                got_n, got_v = bars.get(bucket, (0, Decimal(0)))
                lost += max(0, want_n - got_n)
                doubled += max(0, got_n - want_n)
                applied += min(want_n, got_n)
                if want_n == got_n and want_v != got_v:
                    wrong += 1
                    notes.append(f"{symbol} candle {bucket}: volume {got_v} != {want_v}")
            for interval, width in CANDLE_WIDTHS_S.items():
                want = len({_ms(a) // (width * 1000) for a in ticks})
                got = await redis.zcard(f"market:candles:{interval}:{symbol}")
                if want != got:
                    wrong += 1
                    notes.append(f"{symbol} {interval} candles: {got} stored, {want} expected")
            price = cast("bytes | None", await redis.hget(f"market:ticker:{symbol}", "price"))
            if ticks:
                assert ticks[-1].message.event is not None
                last = ticks[-1].message.event.data.price
                if price is None or Decimal(price.decode()) != last:
                    wrong += 1
                    notes.append(f"{symbol} price: stored {price!r}, expected {last}")
    finally:
        await redis.aclose()
    return StoreCheck("ticks", expected_total, applied, lost, doubled, wrong, tuple(notes[:3]))
