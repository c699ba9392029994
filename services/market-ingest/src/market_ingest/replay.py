"""Rebuild market-ingest's Redis state from the MARKET stream (`fleet replay market-ingest`).

``RedisReplayTarget`` is the store's shadow/swap adapter for the runtime's replay engine:
ticks are applied by the live worker's own code (``ticks_by_symbol``, ``RedisMarketStore``)
into keys under a fresh prefix, with no price messages and no candle events; then each
candle series is filled to its depth from the market-history tiers with what the stream no
longer holds (``market_ingest.refill``). The swap is
one Lua script that checks that the live worker has not committed anything past the
rebuild's position and RENAMEs every rebuilt key over its live key: readers see the old
state or the new one, never a half-built one. When the live worker is ahead, the engine
applies up to its position and the script runs again.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from functools import partial
from typing import Any

from redis.asyncio import Redis

from fleet_events import MARKET_STREAM
from fleet_runtime.binding import Subscription
from fleet_runtime.delivery import Batch
from fleet_runtime.replay import (
    CatchUp,
    Comparison,
    ReplayLocked,
    SwapBehind,
    SwapResult,
    TableCompare,
)
from fleet_runtime.replay.lock import renewed
from market_ingest.app import open_redis, rules_of
from market_ingest.handlers import DURABLE, ticks_by_symbol
from market_ingest.metrics import MarketIngestMetrics
from market_ingest.refill import refill
from market_ingest.settings import MarketIngestSettings
from market_ingest.store import Keys, RedisMarketStore, guarded
from market_ingest.ticks import Trade, decode_trade

_SWITCH_ATTEMPTS = 50
_LOCK_KEY = "fleet:replay:lock:market-ingest"
_LOCK_LEASE_MS = 15_000
_SHADOW = "rebuild:"
_KEPT = "replaced:"
_LIVE_WAIT_S = 15.0

# KEYS: n live checkpoint keys, then (rebuilt, live) pairs. ARGV: position, n, kept prefix.
SWITCH_LUA = """
local position = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local kept = ARGV[3]
for i = 1, n do
  local seq = redis.call('HGET', KEYS[i], 'seq')
  if seq and tonumber(seq) > position then return KEYS[i] .. '=' .. seq end
end
for i = n + 1, #KEYS, 2 do
  if kept ~= '' and redis.call('EXISTS', KEYS[i + 1]) == 1 then
    redis.call('RENAME', KEYS[i + 1], kept .. KEYS[i + 1])
  end
  if redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('RENAME', KEYS[i], KEYS[i + 1])
  else
    redis.call('DEL', KEYS[i + 1])
  end
end
return 'ok'
"""

_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# Fields that differ between any two builds of the same ticks.
_VOLATILE_FIELDS = {b"gen", b"updated_at", b"stale"}


class RedisReplayTarget:
    """``fleet_runtime.replay.ReplayTarget`` for market-ingest's per-symbol Redis keys."""

    description = "Redis keys market:*"

    def __init__(self, settings: MarketIngestSettings) -> None:
        self._settings = settings
        self._redis = open_redis(settings)
        self.metrics = MarketIngestMetrics()
        self.keys = Keys(prefix=f"{_SHADOW}{uuid.uuid4().hex[:12]}:")
        self.store = RedisMarketStore(
            self._redis,
            rules_of(settings),
            keys=self.keys,
            outbox=False,
            prices=False,
            closed_events=False,
            metrics=self.metrics,
        )
        self.switched_keys = 0

    def partial_refusal(self) -> str | None:
        """None: a symbol's state is its last 24 h and its kept candles (see docs/replay.md)."""
        return None

    @asynccontextmanager
    async def lock(self, holder: str) -> AsyncIterator[None]:
        """A key with a lease the holder renews: a killed replay frees it within the lease."""
        token = f"{holder} #{uuid.uuid4().hex[:8]}"
        if not await guarded(lambda: self._redis.set(_LOCK_KEY, token, nx=True, px=_LOCK_LEASE_MS)):
            other = await guarded(lambda: self._redis.get(_LOCK_KEY))
            name = other.decode() if isinstance(other, bytes) else str(other)
            raise ReplayLocked(
                f"another replay of {self.description} is running ({name})",
                fix="wait for it to finish, or stop that process; a killed one frees the lock "
                f"within {_LOCK_LEASE_MS // 1000} s",
            )

        async def renew() -> None:
            await self._redis.set(_LOCK_KEY, token, xx=True, px=_LOCK_LEASE_MS)

        async def release() -> None:
            await self._redis.eval(_RELEASE_LUA, 1, _LOCK_KEY, token)

        async with renewed(renew, release, every_s=_LOCK_LEASE_MS / 3000, lock=_LOCK_KEY):
            yield

    async def prepare(self) -> str | None:
        """Delete what interrupted rebuilds left under ``rebuild:*``."""
        removed = await _drop_prefix(self._redis, _SHADOW)
        return f"removed {removed} keys left by an interrupted replay" if removed else None

    def subscriptions(self) -> Sequence[Subscription]:
        """The live worker's decoding and store code, writing under the shadow prefix."""
        store = self.store

        async def on_ticks(batch: Batch[Trade]) -> None:
            await store.apply(ticks_by_symbol(batch))

        return [Subscription(MARKET_STREAM, DURABLE, on_ticks, decode=decode_trade)]

    async def complete_shadow(self) -> str | None:
        """Each rebuilt candle series filled to ``candles_kept`` bars from the warm and
        cold tiers (``market_ingest.refill``): what the stream no longer holds."""
        return await refill(
            self._redis,
            self.store,
            self._settings.candle_intervals,
            self._settings.candles_kept,
            os.environ,
        )

    def _pairs(self) -> tuple[list[str], list[str]]:
        live = Keys()
        intervals = self._settings.candle_intervals
        checks = [live.seq(s) for s in self.store.symbols]
        pairs: list[str] = []
        for symbol in self.store.symbols:
            for src, dst in zip(
                self.keys.state(symbol, intervals), live.state(symbol, intervals), strict=True
            ):
                pairs += [src, dst]
        return checks, pairs

    async def _live_position(self) -> int:
        checks, _ = self._pairs()
        if not checks:
            return 0

        async def read() -> list[Any]:
            async with self._redis.pipeline(transaction=False) as pipe:
                for key in checks:
                    pipe.hget(key, "seq")
                answers: list[Any] = await pipe.execute()
            return answers

        seqs = await guarded(read)
        return max((int(s) for s in seqs if s is not None), default=0)

    async def swap(self, catch_up: CatchUp, *, keep_old: bool) -> SwapResult:
        """Catch up to the live checkpoints, then rename every rebuilt key in one script."""
        kept = f"{_KEPT}{datetime.now(UTC):%Y%m%d%H%M%S}:" if keep_old else ""
        script = self._redis.register_script(SWITCH_LUA)
        text = ""
        for _ in range(_SWITCH_ATTEMPTS):
            live_at = await self._live_position()
            position = await catch_up(live_at)
            checks, pairs = self._pairs()
            started = time.monotonic()
            # The script is the commit; one that refuses changes nothing, and the next
            # catch_up makes a signal stop the replay again.
            catch_up.before_commit()
            answer = await guarded(
                partial(script, keys=[*checks, *pairs], args=[position, len(checks), kept])
            )
            pause = time.monotonic() - started
            text = answer.decode() if isinstance(answer, bytes) else str(answer)
            if text == "ok":
                self.switched_keys = len(pairs) // 2
                return SwapResult(position, live_at, pause, pairs[1::2], kept or None)
        raise SwapBehind(f"the live worker stayed ahead ({text})")

    async def compare(self, catch_up: CatchUp) -> Comparison:
        """Each key family (ticker, window, candles per interval) of the rebuilt symbols."""
        shadow_at = await catch_up(0)
        deadline = time.monotonic() + _LIVE_WAIT_S
        while time.monotonic() < deadline:
            if await self._live_position() >= shadow_at:
                break
            # Redis has no notification of another client's write: poll the checkpoints.
            await asyncio.sleep(0.05)
        live_at = await self._live_position()
        shadow_at = await catch_up(live_at)
        live = Keys()
        families: dict[str, list[tuple[str, str]]] = {}
        intervals = self._settings.candle_intervals
        for symbol in self.store.symbols:
            names = ["seq", "ticker", "window", *(f"candles:{i.value}" for i in intervals)]
            both = zip(
                live.state(symbol, intervals), self.keys.state(symbol, intervals), strict=True
            )
            for name, pair in zip(names, both, strict=True):
                families.setdefault(name, []).append(pair)
        tables = []
        for name, pairs in families.items():
            lives = [await self._digest(k) for k, _ in pairs]
            shadows = [await self._digest(k) for _, k in pairs]
            tables.append(
                TableCompare(
                    name,
                    sum(n for n, _ in lives),
                    sum(n for n, _ in shadows),
                    _combine(d for _, d in lives),
                    _combine(d for _, d in shadows),
                )
            )
        return Comparison(live_at, shadow_at, tables)

    async def _digest(self, key: str) -> tuple[int, str]:
        """(entries, digest) of a hash or sorted set, volatile fields left out."""
        # The client does not decode responses: keys, fields and members are bytes.
        redis: Any = self._redis
        kind = (await redis.type(key)).decode()
        items: list[bytes] = []
        if kind == "hash":
            stored = await redis.hgetall(key)
            items = [k + b"=" + v for k, v in stored.items() if k not in _VOLATILE_FIELDS]
        elif kind == "zset":
            scored = await redis.zrange(key, 0, -1, withscores=True)
            items = [m + b"@" + str(s).encode() for m, s in scored]
        return len(items), hashlib.md5(b"\n".join(sorted(items))).hexdigest()  # noqa: S324

    async def discard(self) -> None:
        """Delete this replay's shadow keys."""
        await _drop_prefix(self._redis, self.keys.prefix)

    async def drop_old(self) -> list[str]:
        """Delete the keys kept by ``--keep-old``; the kept prefixes removed."""
        prefixes = set()
        async for key in self._redis.scan_iter(match=f"{_KEPT}*", count=1000):
            prefixes.add(":".join(key.decode().split(":", 2)[:2]) + ":")
        for prefix in sorted(prefixes):
            await _drop_prefix(self._redis, prefix)
        return sorted(prefixes)

    async def close(self) -> None:
        """Close the Redis client."""
        await self._redis.aclose()


async def open_replay_target(settings: MarketIngestSettings) -> RedisReplayTarget:
    """``WorkerSpec.replay`` of market-ingest."""
    return RedisReplayTarget(settings)


def _combine(digests: Any) -> str:
    return hashlib.md5("".join(digests).encode()).hexdigest()  # noqa: S324


async def _drop_prefix(redis: Redis, prefix: str) -> int:
    """Delete every key under ``prefix``; how many."""
    removed = 0
    batch: list[Any] = []
    async for key in redis.scan_iter(match=f"{prefix}*", count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            removed += await redis.delete(*batch)
            batch = []
    if batch:
        removed += await redis.delete(*batch)
    return removed
