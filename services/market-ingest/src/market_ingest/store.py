"""The Redis store of market-ingest: keys, the atomic per-symbol write, the candle outbox.

The worker keeps each symbol's state in memory and writes every batch with one Lua script
per symbol that first checks the stored checkpoint (``seq`` and lineage ``gen``) still is
the one the memory copy was built on. Anything else (a wipe, a rebuild switch-over, another
writer) makes the script refuse; the symbol is then read again from Redis and recomputed.
Driver errors become the runtime's ``StoreUnavailable``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar, cast

from redis import exceptions as redis_errors
from redis.asyncio import Redis

from fleet_events import CandleInterval
from fleet_runtime.errors import StoreUnavailable
from fleet_runtime.shared_settings import variable_with_prefix
from fleet_runtime.startup import StartupRefused
from market_ingest.bars import Bar, epoch_us
from market_ingest.logic import (
    WINDOW,
    LastTrade,
    OutboxEntry,
    Rules,
    SeqTick,
    SymbolState,
    SymbolWrite,
    apply_ticks,
)
from market_ingest.metrics import MarketIngestMetrics

PREFIX = "MARKET_INGEST_"

T = TypeVar("T")

_CONFLICT_ATTEMPTS = 3

# KEYS: seq, ticker, window, one candle key per interval, outbox.
# ARGV[1]: JSON spec (strings only, so no number goes through a Lua double).
# ARGV[2]: the price messages, one per line (compact JSON never holds a raw newline); kept
# out of the spec so that neither side escapes or parses them.
APPLY_LUA = """
local spec = cjson.decode(ARGV[1])
local seq = redis.call('HGET', KEYS[1], 'seq')
local token = ''
if seq then token = seq .. ':' .. (redis.call('HGET', KEYS[1], 'gen') or '') end
if token ~= spec.expect then return token end
redis.call('HSET', KEYS[1], 'seq', spec.seq, 'gen', spec.gen)
redis.call('EXPIRE', KEYS[1], spec.seq_ttl)
redis.call('HSET', KEYS[2], unpack(spec.ticker))
redis.call('EXPIRE', KEYS[2], spec.state_ttl)
for i, series in ipairs(spec.series) do
  local key = KEYS[2 + i]
  for _, bar in ipairs(series.bars) do
    redis.call('ZREMRANGEBYSCORE', key, bar[1], bar[1])
    redis.call('ZADD', key, bar[1], bar[2])
  end
  redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. series.keep_from)
  if redis.call('EXISTS', key) == 1 then redis.call('EXPIRE', key, series.ttl) end
end
for message in string.gmatch(ARGV[2], '[^\\n]+') do redis.call('PUBLISH', spec.channel, message) end
if #spec.outbox > 0 then redis.call('HSET', KEYS[#KEYS], unpack(spec.outbox)) end
return 'ok'
"""


@dataclass(frozen=True)
class Keys:
    """Redis key names, optionally under a prefix (a rebuild writes beside the live keys)."""

    prefix: str = ""

    def seq(self, symbol: str) -> str:
        """Hash ``seq``/``gen``: the last applied stream sequence and the state's lineage."""
        return f"{self.prefix}market:seq:{symbol}"

    def ticker(self, symbol: str) -> str:
        """Hash: last trade and 24 h figures, ``stale`` 1 once the feed went silent."""
        return f"{self.prefix}market:ticker:{symbol}"

    @property
    def tickers(self) -> str:
        """SCAN pattern of every ticker under this prefix."""
        return self.ticker("*")

    def window(self, symbol: str) -> str:
        """Sorted set: one-minute buckets of the last 24 h, scored by open time (ms)."""
        return f"{self.prefix}market:window:{symbol}"

    def candles(self, interval: CandleInterval, symbol: str) -> str:
        """Sorted set: the kept candles of one interval, scored by open time (ms)."""
        return f"{self.prefix}market:candles:{interval.value}:{symbol}"

    def outbox(self, symbol: str) -> str:
        """Hash: closed-candle events not yet confirmed published, by event id."""
        return f"{self.prefix}market:outbox:{symbol}"

    def state(self, symbol: str, intervals: Sequence[CandleInterval]) -> list[str]:
        """Every key holding the symbol's projected state (not its outbox)."""
        return [
            self.seq(symbol),
            self.ticker(symbol),
            self.window(symbol),
            *(self.candles(i, symbol) for i in intervals),
        ]

    @staticmethod
    def prices(symbol: str) -> str:
        """Pub/sub channel of the symbol's applied ticks."""
        return f"prices:{symbol}"


def is_stale(trade_time: str, stale_before: datetime) -> bool:
    """Whether a ticker's last trade (ISO text, ``Z``) is older than ``stale_before``."""
    return datetime.fromisoformat(trade_time) < stale_before


def _seconds(delta: timedelta) -> int:
    return int(delta.total_seconds())


async def guarded(call: Callable[[], Awaitable[T]]) -> T:
    """Run a Redis call; connection trouble becomes ``StoreUnavailable``."""
    try:
        return await call()
    except (redis_errors.ConnectionError, redis_errors.TimeoutError) as exc:
        raise StoreUnavailable(f"redis: {type(exc).__name__}: {exc}") from exc
    except redis_errors.ResponseError as exc:
        # A restarted server answers LOADING while it reads its dump, and has lost the
        # script cache (NOSCRIPT) until the client loads the script again.
        if str(exc).startswith(("LOADING", "NOSCRIPT")):
            raise StoreUnavailable(f"redis: {exc}") from exc
        raise


class RedisMarketStore:
    """Per-symbol market state in Redis, written exactly once per tick.

    ``outbox=False`` and ``prices=False`` are for rebuilds: no candle is queued for
    publishing and nothing is sent on the price channels; ``closed_events=False`` also
    leaves the candle events of closed candles out of what ``apply`` returns (a rebuild
    has no use for them).
    """

    def __init__(
        self,
        redis: Redis,
        rules: Rules,
        *,
        keys: Keys | None = None,
        outbox: bool = True,
        prices: bool = True,
        closed_events: bool = True,
        metrics: MarketIngestMetrics | None = None,
    ) -> None:
        self._redis = redis
        self._rules = rules
        self.keys = keys or Keys()
        self._outbox = outbox
        self._prices = prices
        self._closed_events = closed_events
        self._metrics = metrics
        self._cache: dict[str, SymbolState] = {}
        self._script = redis.register_script(APPLY_LUA)
        self._candle_ttl = {
            i: max(_seconds(i.duration * rules.candles_kept), 60) for i in rules.intervals
        }
        self._state_ttl = _seconds(WINDOW)
        # The checkpoint expires first: once any key of a symbol may have expired, the
        # memory copy no longer matches and is read again.
        self._seq_ttl = min(self._state_ttl, *self._candle_ttl.values())

    @property
    def symbols(self) -> list[str]:
        """Symbols whose state this store holds in memory."""
        return sorted(self._cache)

    def kept(self, symbol: str, interval: CandleInterval) -> list[Bar]:
        """The bars of one candle series held in memory, oldest first."""
        series = self._cache[symbol].candles[interval]
        return [series.bars[t] for t in series.order]

    async def reload(self, symbols: Sequence[str]) -> None:
        """Read these symbols' state from Redis again, after something else (a refill of
        older bars) wrote their keys."""
        await self._load(list(symbols))

    async def ping(self) -> None:
        """Fail with ``StoreUnavailable`` unless Redis answers; refused credentials and a
        Redis that evicts keys are ``StartupRefused`` (waiting cannot fix them)."""
        try:
            await guarded(self._redis.ping)
            memory = await guarded(lambda: self._redis.info("memory"))
        except StoreUnavailable as exc:
            if isinstance(exc.__cause__, redis_errors.AuthenticationError):
                raise StartupRefused(
                    f"Redis refused the credentials ({exc.__cause__})",
                    fix=f"put the right password in {variable_with_prefix(PREFIX, 'redis_url')}",
                ) from None
            raise
        policy = str(memory.get("maxmemory_policy", "noeviction"))
        if policy != "noeviction":
            # Every key here carries a TTL, so a volatile-* policy may drop any of them too:
            # an evicted candle series would come back holding only the bars after it.
            raise StartupRefused(
                f"Redis evicts keys under memory pressure (maxmemory-policy {policy}): "
                "candle series and checkpoints could vanish without an error",
                fix="set maxmemory-policy noeviction on this Redis "
                "(redis.conf, or CONFIG SET maxmemory-policy noeviction)",
            )

    async def apply(self, ticks: Mapping[str, Sequence[SeqTick]]) -> list[SymbolWrite]:
        """Apply each symbol's ticks (stream order) atomically with its checkpoint.

        Returns what was written per symbol (closed candles, counts). Ticks at or below a
        symbol's stored sequence change nothing.
        """
        pending = {s: list(t) for s, t in ticks.items() if t}
        done: list[SymbolWrite] = []
        for _ in range(_CONFLICT_ATTEMPTS):
            await self._load([s for s in pending if s not in self._cache])
            writes = [
                apply_ticks(
                    self._cache[s], t, self._rules, prices=self._prices, closed=self._closed_events
                )
                for s, t in pending.items()
            ]
            changed = [w for w in writes if w.applied]
            try:
                answers = await guarded(partial(self._write, changed))
            except BaseException:
                # The memory copies already hold the batch: drop them, Redis decides.
                for symbol in pending:
                    self._cache.pop(symbol, None)
                raise
            refused = {w.symbol for w, a in zip(changed, answers, strict=True) if a != b"ok"}
            done += [w for w in writes if w.symbol not in refused]
            for symbol in refused:
                del self._cache[symbol]
                if self._metrics is not None:
                    self._metrics.state_reloads.inc()
            pending = {s: pending[s] for s in refused}
            if not pending:
                return done
        raise StoreUnavailable(
            f"the stored state of {sorted(pending)} changed under every attempt: another "
            "writer is active on the same keys"
        )

    async def _write(self, writes: list[SymbolWrite]) -> list[Any]:
        if not writes:
            return []
        at = datetime.now(UTC)
        now = at.isoformat().replace("+00:00", "Z")
        stale_before = at - timedelta(milliseconds=self._rules.ticker_stale_after_ms)
        async with self._redis.pipeline(transaction=False) as pipe:
            for w in writes:
                keys = [*self.keys.state(w.symbol, self._rules.intervals)]
                keys.append(self.keys.outbox(w.symbol))
                prices = "\n".join(w.prices) if self._prices else ""
                stale = is_stale(w.ticker["trade_time"], stale_before)
                spec = self._spec(w, now, stale)
                await self._script(keys=keys, args=[spec, prices], client=pipe)
            answers: list[Any] = await pipe.execute()
        return answers

    def _spec(self, w: SymbolWrite, now: str, stale: bool) -> str:
        ticker = [x for kv in w.ticker.items() for x in kv]
        ticker += ["updated_at", now, "stale", "1" if stale else "0"]
        series = [
            {
                "bars": [[str(b.open_time), b.encode()] for b in w.window.bars],
                "keep_from": str(w.window.keep_from),
                "ttl": str(self._state_ttl),
            }
        ]
        for interval in self._rules.intervals:
            sw = w.candles[interval]
            series.append(
                {
                    "bars": [[str(b.open_time), b.encode()] for b in sw.bars],
                    "keep_from": str(sw.keep_from),
                    "ttl": str(self._candle_ttl[interval]),
                }
            )
        outbox: list[str] = []
        if self._outbox:
            for event in w.closed:
                entry = OutboxEntry.of(event)
                outbox += [entry.event_id, entry.packed()]
        spec = {
            "expect": w.expect,
            "seq": str(w.seq),
            "gen": w.gen,
            "seq_ttl": str(self._seq_ttl),
            "state_ttl": str(self._state_ttl),
            "ticker": ticker,
            "series": series,
            "channel": Keys.prices(w.symbol),
            "outbox": outbox,
        }
        return json.dumps(spec, separators=(",", ":"))

    async def _load(self, symbols: list[str]) -> None:
        if not symbols:
            return
        intervals = self._rules.intervals

        async def read() -> list[Any]:
            async with self._redis.pipeline(transaction=False) as pipe:
                for symbol in symbols:
                    pipe.hgetall(self.keys.seq(symbol))
                    pipe.hmget(self.keys.ticker(symbol), ["price", "quantity", "trade_time"])
                    pipe.zrange(self.keys.window(symbol), 0, -1)
                    for interval in intervals:
                        pipe.zrange(self.keys.candles(interval, symbol), 0, -1)
                result: list[Any] = await pipe.execute()
                return result

        replies = await guarded(read)
        width = 3 + len(intervals)
        for n, symbol in enumerate(symbols):
            seq_hash, last, window, *candles = replies[n * width : (n + 1) * width]
            seq = int(seq_hash.get(b"seq", 0))
            gen = seq_hash.get(b"gen", b"").decode() if seq else uuid.uuid4().hex
            state = SymbolState.empty(symbol, self._rules, gen)
            state.seq = seq
            state.window.load([Bar.decode(m) for m in window])
            for interval, members in zip(intervals, candles, strict=True):
                state.candles[interval].load([Bar.decode(m) for m in members])
            if all(v is not None for v in last):
                moment = datetime.fromisoformat(last[2].decode())
                state.last = LastTrade(
                    epoch_us(moment), Decimal(last[0].decode()), Decimal(last[1].decode())
                )
            self._cache[symbol] = state

    # -- outbox ------------------------------------------------------------------------

    async def outbox(self) -> list[OutboxEntry]:
        """Every queued candle event, ordered by subject then event id."""

        async def read() -> list[OutboxEntry]:
            entries: list[OutboxEntry] = []
            pattern = self.keys.outbox("*")
            start = len(self.keys.outbox(""))
            async for key in self._redis.scan_iter(match=pattern, count=1000):
                symbol = key.decode()[start:]
                # The client does not decode responses: keys and values are bytes.
                stored = cast("dict[bytes, bytes]", await self._redis.hgetall(key))
                entries += [OutboxEntry.unpack(symbol, k.decode(), v) for k, v in stored.items()]
            return sorted(entries, key=lambda e: (e.subject, e.event_id))

        return await guarded(read)

    async def outbox_done(self, entries: Sequence[OutboxEntry]) -> None:
        """Forget published entries."""
        if not entries:
            return

        async def delete() -> None:
            async with self._redis.pipeline(transaction=False) as pipe:
                for e in entries:
                    pipe.hdel(self.keys.outbox(e.symbol), e.event_id)
                await pipe.execute()

        await guarded(delete)
