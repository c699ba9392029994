"""Rebuild market-ingest's Redis state from the MARKET stream (`fleet replay market-ingest`).

Ticks are read with an ephemeral ordered consumer and applied by the same code as the
live worker into keys under a fresh prefix, with no price messages and no candle events.
Once caught up with the stream, one Lua script checks that the live worker has not
committed anything past the rebuild's position and RENAMEs every rebuilt key over its
live key: readers see the old state or the new one, never a half-built one.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig, DeliverPolicy
from redis.asyncio import Redis

from fleet_events import MARKET_STREAM, DecodeError
from fleet_runtime.worker import connect_nats
from market_ingest.app import open_redis, rules_of
from market_ingest.logic import SeqTick
from market_ingest.metrics import MarketIngestMetrics
from market_ingest.settings import MarketIngestSettings
from market_ingest.store import Keys, RedisMarketStore, guarded
from market_ingest.ticks import decode_trade

TICKS = "market.tick.>"
_IDLE_S = 2.0
_PROGRESS_EVERY_S = 1.0
_SWITCH_ATTEMPTS = 50

# KEYS: n live checkpoint keys, then (rebuilt, live) pairs. ARGV: position, n.
SWITCH_LUA = """
local position = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
for i = 1, n do
  local seq = redis.call('HGET', KEYS[i], 'seq')
  if seq and tonumber(seq) > position then return KEYS[i] .. '=' .. seq end
end
for i = n + 1, #KEYS, 2 do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('RENAME', KEYS[i], KEYS[i + 1])
  else
    redis.call('DEL', KEYS[i + 1])
  end
end
return 'ok'
"""


@dataclass
class RebuildResult:
    """What a rebuild did."""

    ticks: int = 0
    invalid: int = 0
    symbols: int = 0
    keys: int = 0
    position: int = 0
    switched: bool = False


async def rebuild(
    settings: MarketIngestSettings,
    since: timedelta | None = None,
    progress: Callable[[str], None] = print,
) -> RebuildResult:
    """Rebuild every symbol seen in the stream (since ``since`` ago, or all) and switch over.

    Symbols with no tick in that range keep their live keys untouched.
    """
    redis = open_redis(settings)
    nc = await connect_nats(settings.nats_url, "market-ingest-rebuild")
    keys = Keys(prefix=f"rebuild:{uuid.uuid4().hex[:12]}:")
    metrics = MarketIngestMetrics()
    store = RedisMarketStore(
        redis, rules_of(settings), keys=keys, outbox=False, prices=False, metrics=metrics
    )
    result = RebuildResult()
    inbox: asyncio.Queue[Msg] = asyncio.Queue()

    async def on_msg(msg: Msg) -> None:
        inbox.put_nowait(msg)

    config = ConsumerConfig()
    policy = DeliverPolicy.ALL
    if since is not None:
        policy = DeliverPolicy.BY_START_TIME
        config.opt_start_time = datetime.now(UTC) - since
    sub = await nc.jetstream().subscribe(
        TICKS,
        stream=MARKET_STREAM,
        cb=on_msg,
        ordered_consumer=True,
        deliver_policy=policy,
        config=config,
    )
    scope = "all ticks" if since is None else f"ticks since {config.opt_start_time}"
    progress(f"rebuilding market-ingest state from {MARKET_STREAM} ({scope}) into {keys.prefix}*")
    try:
        await _consume_and_switch(store, redis, inbox, settings, result, progress)
    finally:
        await sub.unsubscribe()
        await nc.drain()
        if not result.switched:
            await _drop_prefix(redis, keys.prefix)
        await redis.aclose()
    late = {k[0]: int(v) for k, v in _samples(metrics.late_skipped).items() if v}
    progress(
        f"done: {result.ticks:,} ticks, {result.symbols} symbols, {result.keys} keys switched "
        f"at stream seq {result.position:,}; invalid ticks skipped {result.invalid}; "
        f"late ticks skipped {late or 0}"
    )
    return result


async def _consume_and_switch(
    store: RedisMarketStore,
    redis: Redis,
    inbox: asyncio.Queue[Msg],
    settings: MarketIngestSettings,
    result: RebuildResult,
    progress: Callable[[str], None],
) -> None:
    started = last_report = time.monotonic()
    pending = -1
    switch_attempts = 0
    while True:
        try:
            first = await asyncio.wait_for(inbox.get(), _IDLE_S)
        except TimeoutError:
            first = None
        if first is None and result.ticks == 0 and result.invalid == 0:
            progress("no ticks in the stream for that range: nothing rebuilt")
            return
        msgs = [] if first is None else [first]
        while msgs and len(msgs) < settings.rebuild_batch_size and not inbox.empty():
            msgs.append(inbox.get_nowait())
        if msgs:
            pending = await _apply_msgs(store, msgs, result)
        now = time.monotonic()
        if now - last_report >= _PROGRESS_EVERY_S:
            last_report = now
            rate = result.ticks / max(now - started, 1e-9)
            progress(
                f"  {result.ticks:,} ticks applied, stream seq {result.position:,}, "
                f"{max(pending, 0):,} to go, {rate:,.0f} ticks/s"
            )
        if pending == 0 and inbox.empty():
            behind = await _switch(store, redis, settings, result)
            if behind is None:
                return
            switch_attempts += 1
            if switch_attempts >= _SWITCH_ATTEMPTS:
                raise RuntimeError(
                    f"the live worker stays ahead of the rebuild ({behind}); nothing switched"
                )


async def _apply_msgs(store: RedisMarketStore, msgs: list[Msg], result: RebuildResult) -> int:
    """Apply a chunk the way the live worker would; return how many ticks remain."""
    groups: dict[str, list[SeqTick]] = {}
    for msg in msgs:
        meta = msg.metadata
        result.position = meta.sequence.stream
        try:
            trade = decode_trade(msg.data)
        except DecodeError:
            result.invalid += 1  # the live worker dead-letters these
            continue
        tokens = msg.subject.split(".")
        if len(tokens) < 3 or tokens[2] != trade.symbol:
            result.invalid += 1
            continue
        groups.setdefault(trade.symbol, []).append(SeqTick(meta.sequence.stream, trade))
        result.ticks += 1
    await store.apply(groups)
    return int(msgs[-1].metadata.num_pending)


async def _switch(
    store: RedisMarketStore, redis: Redis, settings: MarketIngestSettings, result: RebuildResult
) -> str | None:
    """Rename the rebuilt keys over the live ones; the live key that is ahead, if any."""
    live = Keys()
    symbols = store.symbols
    intervals = settings.candle_intervals
    checks = [live.seq(s) for s in symbols]
    pairs: list[str] = []
    for symbol in symbols:
        for src, dst in zip(
            store.keys.state(symbol, intervals), live.state(symbol, intervals), strict=True
        ):
            pairs += [src, dst]
    script = redis.register_script(SWITCH_LUA)
    answer = await guarded(
        lambda: script(keys=[*checks, *pairs], args=[result.position, len(checks)])
    )
    text = answer.decode() if isinstance(answer, bytes) else str(answer)
    if text != "ok":
        return text
    result.switched = True
    result.symbols = len(symbols)
    result.keys = len(pairs) // 2
    return None


async def _drop_prefix(redis: Redis, prefix: str) -> None:
    """Delete what an unfinished rebuild wrote."""
    batch: list[Any] = []
    async for key in redis.scan_iter(match=f"{prefix}*", count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            await redis.delete(*batch)
            batch = []
    if batch:
        await redis.delete(*batch)


def _samples(counter: Any) -> dict[tuple[str, ...], float]:
    """Label values -> count of a labelled prometheus Counter."""
    out: dict[tuple[str, ...], float] = {}
    for family in counter.collect():
        for sample in family.samples:
            if sample.name.endswith("_total"):
                out[tuple(sample.labels.values())] = sample.value
    return out
