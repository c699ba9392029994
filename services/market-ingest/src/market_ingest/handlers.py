"""What market-ingest consumes and produces.

Consumes ``market.tick.<symbol>`` (durable ``market-ingest`` on MARKET) into Redis and
publishes ``market.candle.<interval>.<symbol>`` to MARKET when a candle closes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import nats.errors

from fleet_events import MARKET_STREAM
from fleet_runtime.consume import Subscription
from fleet_runtime.delivery import Batch
from fleet_runtime.errors import EventRejected, StoreUnavailable
from fleet_runtime.logs import get_logger
from fleet_runtime.publisher import PublishFailed, RawMessage
from market_ingest.logic import OutboxEntry, SeqTick, SymbolWrite
from market_ingest.metrics import MarketIngestMetrics
from market_ingest.ticks import Trade, decode_trade

DURABLE = "market-ingest"
_SYMBOL_TOKEN = 2  # market.tick.<symbol>[.<partition>]

log = get_logger("market_ingest.handlers")


class MarketStore(Protocol):
    """The store port the handler writes through."""

    async def apply(self, ticks: Mapping[str, Sequence[SeqTick]]) -> list[SymbolWrite]:
        """Apply each symbol's ticks atomically with its checkpoint."""
        ...

    async def outbox(self) -> list[OutboxEntry]:
        """Queued candle events."""
        ...

    async def outbox_done(self, entries: Sequence[OutboxEntry]) -> None:
        """Forget published candle events."""
        ...


class RawPublisher(Protocol):
    """Publishes pre-encoded messages under JetStream message ids."""

    async def publish_raw_many(self, messages: Sequence[RawMessage]) -> Sequence[object]:
        """Store (subject, data, msg id) in order; the stream drops a repeated msg id.

        Raises ``PublishFailed`` with how many leading messages were stored.
        """
        ...


def ticks_by_symbol(batch: Batch[Trade]) -> dict[str, list[SeqTick]]:
    """Group a batch per symbol, in stream order; a symbol unlike its subject is rejected.

    The batch's events are ``Trade``s (the subscription decodes with ``decode_trade``).
    Raises ``EventRejected`` for the first such tick, before anything is written.
    """
    groups: dict[str, list[SeqTick]] = {}
    checked: dict[str, str] = {}  # subject -> the symbol it was seen to match
    for d in batch:
        tick: Trade = d.event
        symbol = tick.symbol
        if checked.get(d.subject) != symbol:
            tokens = d.subject.split(".")
            token = tokens[_SYMBOL_TOKEN] if len(tokens) > _SYMBOL_TOKEN else ""
            if token != symbol:
                raise EventRejected(
                    tick.id,
                    f"symbol {symbol!r} does not match the subject {d.subject!r} "
                    f"(market.tick.<symbol>)",
                )
            checked[d.subject] = symbol
        group = groups.get(symbol)
        if group is None:
            group = groups[symbol] = []
        group.append(SeqTick(d.stream_seq, tick))
    return groups


class TickHandler:
    """Applies tick batches to the store, then publishes the candles they closed."""

    def __init__(
        self, store: MarketStore, publisher: RawPublisher, metrics: MarketIngestMetrics
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._metrics = metrics
        self._unpublished: list[OutboxEntry] = []

    def subscription(self) -> Subscription:
        """The durable consumer this handler serves."""
        return Subscription(MARKET_STREAM, DURABLE, self.on_ticks, decode=decode_trade)

    async def recover(self) -> None:
        """Publish the candles a previous run stored but did not confirm published."""
        self._unpublished = await self._store.outbox()
        if self._unpublished:
            log.info("candle_outbox_recovered", count=len(self._unpublished))
        await self._publish_outbox()

    async def on_ticks(self, batch: Batch[Trade]) -> None:
        """Apply one batch: Redis first (atomic per symbol), then the candle events."""
        groups = ticks_by_symbol(batch)
        writes = await self._store.apply(groups)
        for w in writes:
            self._metrics.applied.inc(w.applied)
            if w.duplicates:
                self._metrics.duplicates.inc(w.duplicates)
            for scope, n in w.late_skipped.items():
                self._metrics.late_skipped.labels(scope).inc(n)
                log.info("late_ticks_skipped", symbol=w.symbol, scope=scope, count=n)
            self._unpublished += [OutboxEntry.of(e) for e in w.closed]
        await self._publish_outbox()

    async def _publish_outbox(self) -> None:
        """Publish queued candles; each is forgotten only once the stream has stored it.

        All of a batch's candles are in flight together: one round trip to the stream
        instead of one per candle.
        """
        entries = self._unpublished
        if not entries:
            return
        stored = 0
        try:
            await self._publisher.publish_raw_many(
                [(e.subject, e.data, e.event_id) for e in entries]
            )
            stored = len(entries)
        except PublishFailed as exc:
            stored = exc.stored
            # The rest stay queued in Redis and in memory; the runtime retries the batch
            # (its ticks are already applied and skip) and this publishes them again.
            raise StoreUnavailable(f"publishing closed candles: {exc}") from exc
        except nats.errors.Error as exc:
            raise StoreUnavailable(f"publishing closed candles: {exc}") from exc
        finally:
            published = entries[:stored]
            for entry in published:
                self._metrics.candles_published.labels(entry.subject.split(".")[2]).inc()
            self._unpublished = entries[stored:]
            await self._store.outbox_done(published)
