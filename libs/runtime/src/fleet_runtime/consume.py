"""The consume loop of one durable consumer: batch, decode, handle, commit, ack.

Two stages: batch N+1 is taken and decoded (``fleet_runtime.staging``) while batch N's
handler call, its store transaction, is in flight; N+1 is handed to the handler only once
N is committed and acked. At most one batch is in flight, so commits, checkpoints and
acks happen in the same order as without the overlap.

Guarantees (see docs/worker-contract.md):
- events reach the handler in stream order, and an event is never committed after an
  earlier one of the same consumer that is still unresolved;
- undecodable or invalid events are dead-lettered at once; a handler error on one event
  is retried in place with the consumer's backoff and dead-lettered after max_deliver;
- a store outage (``StoreUnavailable``) is retried forever with capped backoff while the
  messages in hand are kept in progress; nothing is dead-lettered because of it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

from fleet_runtime.binding import (
    ConsumerBinding,
    Handler,
    Readiness,
    Subscription,
    ack_position,
    delivery_seq,
)
from fleet_runtime.deadletter import DeadLetter, publish_dead_letter
from fleet_runtime.delivery import Batch, Delivery
from fleet_runtime.errors import ConsumerMissing, EventRejected, StoreUnavailable
from fleet_runtime.exhausted import ExhaustedSweeper
from fleet_runtime.logs import get_logger
from fleet_runtime.metrics import WorkerMetrics
from fleet_runtime.orphans import DeliveryGaps, OrphanGuard, may_group, orphan_groups
from fleet_runtime.pull import PullSource
from fleet_runtime.staging import Decoded, Refused, decode_batch

log = get_logger("fleet_runtime.consume")

# The binding types lived here first; services import them from this module.
__all__ = [
    "ConsumerBinding",
    "ConsumerLoop",
    "Handler",
    "Readiness",
    "Stopping",
    "Subscription",
    "ack_position",
]

_STORE_RETRY_FIRST_S = 0.25
_STORE_RETRY_MAX_S = 5.0
_SWEEP_EVERY_S = 5.0


class Stopping(Exception):
    """Raised inside the loop when a stop was asked while waiting to retry."""


class ConsumerLoop:
    """Runs one subscription until asked to stop."""

    def __init__(
        self,
        *,
        worker: str,
        nc: NATS,
        js: JetStreamContext,
        subscription: Subscription,
        metrics: WorkerMetrics,
        readiness: Readiness,
        batch_size: int,
        batch_max_wait_s: float,
        inflight: int = 2,
    ) -> None:
        self.worker = worker
        self._nc = nc
        self._js = js
        self._sub = subscription
        self._metrics = metrics
        self._readiness = readiness
        self._batch_size = batch_size
        self._max_wait = batch_max_wait_s
        # Two batches requested ahead keep the server busy while a batch is handled; the
        # pull source reads all of them through one subscription, so order is kept.
        self._inflight = inflight
        self._labels = (worker, subscription.stream, subscription.durable)
        self._key = f"{subscription.stream}/{subscription.durable}"
        self.binding: ConsumerBinding | None = None
        self._source: PullSource | None = None
        self._stop = asyncio.Event()
        # The batch whose commit is in flight (``_pending``) and the one decoded behind it.
        self._committing: Decoded | None = None
        self._next: Decoded | None = None
        self._pending: asyncio.Task[None] | None = None
        self._orphans = OrphanGuard(subscription.durable)
        self._gaps = DeliveryGaps()

    async def bind(self) -> ConsumerBinding:
        """Look the durable up on the server; fail fast with a fix if it is missing."""
        try:
            info = await self._js.consumer_info(self._sub.stream, self._sub.durable)
        except NotFoundError:
            raise await self._missing() from None
        self.binding = ConsumerBinding.from_info(info)
        self._orphans.arm(info, self.binding)
        if info.delivered is not None:
            self._gaps.start_after(info.delivered.consumer_seq)
        return self.binding

    async def _missing(self) -> ConsumerMissing:
        """The error for an absent durable, pointing at ``--partition`` if that is why."""
        what = (
            f"consumer {self._sub.durable!r} on stream {self._sub.stream!r} does not exist "
            "on the server"
        )
        try:
            names = [c.name for c in await self._js.consumers_info(self._sub.stream)]
        except Exception:
            names = []
        parts = sorted(n for n in names if n.startswith(f"{self._sub.durable}-p"))
        if parts:
            return ConsumerMissing(
                what + f" (it is partitioned: {', '.join(parts)})",
                fix=f"run one process per partition: `fleet worker run {self.worker} "
                f"--partition K` with K from 0 to {len(parts) - 1}",
            )
        return ConsumerMissing(
            what,
            fix="declare it in streams.yaml and run `fleet topology apply`; workers never "
            "create streams or consumers",
        )

    def request_stop(self) -> None:
        """Stop fetching; the batch in hand is finished, committed and acked."""
        self._stop.set()

    async def run(self) -> None:
        """Consume until ``request_stop``; on the way out, unprocessed messages are nak'ed."""
        binding = self.binding or await self.bind()
        self._source = PullSource(
            self._nc,
            binding.stream,
            binding.durable,
            batch=self._batch_size,
            inflight=self._inflight,
        )
        heartbeat = asyncio.create_task(self._heartbeat(binding))
        lag = asyncio.create_task(self._report_lag())
        sweeper = asyncio.create_task(self._sweep_exhausted(binding))
        try:
            if self._orphans.active:
                # Pull only once the orphans are due: redeliveries are then served first.
                await self._wait_or_stop(max(self._orphans.due_at - time.monotonic(), 0.0))
            await self._source.start()
            while not self._stop.is_set():
                msgs = await self._source.take(self._batch_size, self._max_wait, 0.5)
                if self._pending is not None and self._pending.done():
                    await self._settle()
                msgs = await self._hold_after_lost(msgs)
                if self._orphans.active:
                    # The orphan guard pauses and resumes the source and commits groups
                    # itself: nothing may be in flight meanwhile.
                    await self._settle()
                    msgs = await self._guard(msgs) or []
                    msgs = await self._recover_orphans(msgs)
                for start in range(0, len(msgs), self._batch_size):
                    await self._pipeline(msgs[start : start + self._batch_size])
            # A clean stop finishes, commits and acks the batch in flight.
            await self._settle()
        except Stopping:
            pass
        finally:
            heartbeat.cancel()
            lag.cancel()
            sweeper.cancel()
            if self._pending is not None and not self._pending.done():
                self._pending.cancel()
            elif self._pending is not None and not self._pending.cancelled():
                # Leaving on another error: the commit's own outcome is not raised twice.
                self._pending.exception()
            self._source.pause()
            leftovers = [*self._in_hand(), *self._orphans.holding(), *self._source.held()]
            await self._source.close()
            await self._nak(leftovers)

    # -- the two stages ---------------------------------------------------------------

    async def _pipeline(self, msgs: list[Msg]) -> None:
        """Decode ``msgs`` while the batch before them commits, then start their commit."""
        self._next = await decode_batch(msgs, self._sub, taken_at=time.monotonic())
        await self._settle()
        decoded, self._next = self._next, None
        self._committing = decoded
        self._pending = asyncio.create_task(
            self._commit(decoded), name=f"commit-{self._sub.durable}"
        )

    async def _settle(self) -> None:
        """Wait for the commit in flight; its error (``Stopping`` included) is raised here."""
        task = self._pending
        if task is None:
            return
        await task
        self._pending = None

    def _in_hand(self) -> list[Msg]:
        """Messages taken from the source and not yet committed."""
        return [m for d in (self._committing, self._next) if d is not None for m in d.msgs]

    # -- batch processing -------------------------------------------------------------

    async def _hold_after_lost(self, msgs: list[Msg]) -> list[Msg]:
        """Commit what came before a delivery lost on the way, guard the rest (orphans)."""
        gap = self._gaps.first_gap(msgs)
        if gap is None or self.binding is None:
            return msgs
        at, missing = gap
        barrier = ack_position(msgs[at].reply)[1] - 1
        if not self._orphans.active and at:
            await self._settle()
            await self._process_batch(msgs[:at])
            msgs = msgs[at:]
        self._orphans.arm_lost(missing, barrier, self.binding)
        return msgs

    async def _guard(self, msgs: list[Msg]) -> list[Msg] | None:
        assert self._source is not None
        self._orphans.admit(msgs)
        if self._orphans.hoarding(self._batch_size):
            # Holding a batch of newer messages already: pull one request at a time from
            # now on, enough for orphans that become due later to come in.
            self._source.pause()
            await self._source.poke()
        elif self._source.paused:
            await self._source.resume()
        pending = None
        if self._orphans.past_deadline:
            info = await self._js.consumer_info(self._sub.stream, self._sub.durable)
            pending = info.num_ack_pending or 0
        released = self._orphans.ready(pending, self._source.buffered)
        if released is not None and self._source.paused:
            await self._source.resume()
        return released

    async def _recover_orphans(self, released: list[Msg]) -> list[Msg]:
        """Commit the orphans among ``released`` in small groups; return the rest.

        The orphans were held by a process that died, maybe because of one of them. Each
        group is committed and acked before the next is handled, so the ones before a
        group that kills the process are applied and acked; groups grow while a crash
        still leaves every orphan a further delivery and are single events on the last
        one, so the ones before an event that kills the process every time end up applied
        and only that event and the ones after it are given up (see
        ``fleet_runtime.orphans``).

        With AckPolicy.ALL the server ignores an ack whose delivery sequence is not above
        the last one it took, and orphans come back in the order their redelivery fell
        due, not in stream order: an orphan delivered after a message released later is
        left unacked, and the next ack covers it.
        """
        barrier = self._orphans.barrier_seq
        cut = next(
            (i for i, m in enumerate(released) if ack_position(m.reply)[1] > barrier),
            len(released),
        )
        if cut <= 1 or self.binding is None:
            return released
        ack_all = self.binding.ack_all
        # later_low[i]: the lowest delivery sequence among released[i + 1:].
        later_low = [0] * len(released)
        low = 2**63
        for i in range(len(released) - 1, -1, -1):
            later_low[i] = low
            low = min(low, delivery_seq(released[i].reply))
        orphans = released[:cut]
        grouped = may_group([ack_position(m.reply)[2] for m in orphans], self.binding.max_deliver)
        end = 0
        groups = 0
        for group in orphan_groups(orphans, grouped=grouped, largest=self._batch_size):
            end += len(group)
            groups += 1
            await self._process_batch(group, ack=False)
            if ack_all:
                # Acks every delivery up to its own: only one below all later orphans'.
                covered = [m for m in group if delivery_seq(m.reply) < later_low[end - 1]]
                acks = [max(covered, key=lambda m: delivery_seq(m.reply))] if covered else []
            else:
                acks = group
            for msg in acks:
                if not msg._ackd:
                    await msg.ack()
            if acks:
                # Flushed before the next group is handled: if that one kills the
                # process, an ack still in the client's buffer would be lost. (A lost ack
                # costs a redelivery that the checkpoint skips, not an effect.)
                try:
                    await self._nc.flush()
                except Exception as exc:
                    log.warning("ack_flush_failed", consumer=self._sub.durable, error=str(exc))
        log.info(
            "orphans_committed",
            consumer=self._sub.durable,
            count=len(orphans),
            groups=groups,
            grouped=grouped,
        )
        return released[cut:]

    async def _process_batch(self, msgs: list[Msg], *, ack: bool = True) -> None:
        """Decode and commit ``msgs`` with nothing in flight (the orphans' groups)."""
        decoded = await decode_batch(msgs, self._sub, taken_at=time.monotonic())
        self._committing = decoded
        await self._commit(decoded, ack=ack)

    async def _commit(self, decoded: Decoded, *, ack: bool = True) -> None:
        """Hand the batch's runs to the handler and dead-letter its refused messages, in
        stream order; then ack the batch."""
        applied = 0
        for step in decoded.steps:
            if isinstance(step, Refused):
                # With AckPolicy.ALL the server treats a term as an ack of every earlier
                # message: the good events before this one were committed first (the
                # steps are in stream order), or a crash right after the term would lose
                # them.
                await self._dead_letter(step.msg, step.error, event_id=step.event_id)
                continue
            await self._apply(step)
            applied += len(step)
        if ack:
            await self._ack(decoded.msgs)
        self._metrics.processed.labels(*self._labels).inc(applied)
        self._committing = None

    async def _apply(self, deliveries: list[Delivery[Any]]) -> None:
        remaining = deliveries
        while remaining:
            try:
                await self._call(remaining)
                return
            except EventRejected as rej:
                idx = next((i for i, d in enumerate(remaining) if d.event.id == rej.event_id), None)
                if idx is None:
                    raise
                bad = remaining[idx]
                # Commit what precedes the rejected event before its term (which, with
                # AckPolicy.ALL, acks everything below it).
                await self._apply(remaining[:idx])
                await self._dead_letter(bad.msg, rej, event_id=bad.event.id)
                remaining = remaining[idx + 1 :]
            except Stopping:
                raise
            except Exception:
                if len(remaining) == 1:
                    await self._retry_single(remaining[0])
                    return
                for d in remaining:
                    await self._apply_single(d)
                return

    async def _apply_single(self, d: Delivery[Any]) -> None:
        try:
            await self._call([d])
        except EventRejected as rej:
            await self._dead_letter(d.msg, rej, event_id=d.event.id)
        except Stopping:
            raise
        except Exception:
            await self._retry_single(d)

    async def _retry_single(self, d: Delivery[Any]) -> None:
        assert self.binding is not None
        attempt = d.num_delivered
        while True:
            try:
                await self._call([d])
                return
            except EventRejected as rej:
                await self._dead_letter(d.msg, rej, event_id=d.event.id)
                return
            except Stopping:
                raise
            except Exception as exc:
                if 0 < self.binding.max_deliver <= attempt:
                    await self._dead_letter(d.msg, exc, event_id=d.event.id, deliveries=attempt)
                    return
                delay = self.binding.retry_delay(attempt)
                log.warning(
                    "handler_error_retry",
                    consumer=self._sub.durable,
                    subject=d.subject,
                    seq=d.stream_seq,
                    event_id=str(d.event.id),
                    attempt=attempt,
                    retry_in_s=delay,
                    error=f"{type(exc).__name__}: {exc}",
                )
                self._metrics.retried.labels(*self._labels).inc()
                attempt += 1
                await self._wait_or_stop(delay)

    async def _call(self, deliveries: Sequence[Delivery[Any]]) -> None:
        """Hand a batch to the handler; a store outage is retried here, forever."""
        batch: Batch[Any] = Batch(deliveries, self._sub.durable)
        delay = _STORE_RETRY_FIRST_S
        # Per loop, not per worker: a worker with several subscriptions shares one
        # Readiness, and each loop that paused its source must resume it itself.
        paused = False
        while True:
            started = time.perf_counter()
            try:
                await self._sub.handler(batch)
            except StoreUnavailable as exc:
                self._metrics.store_unavailable.labels(*self._labels).inc()
                error = str(exc) or type(exc).__name__
                if self._readiness.store_failed(self._key, error):
                    log.warning(
                        "store_unavailable",
                        consumer=self._sub.durable,
                        stream=self._sub.stream,
                        error=error,
                    )
                if self._source is not None:
                    self._source.pause()
                paused = True
                await self._wait_or_stop(delay)
                delay = min(delay * 2, _STORE_RETRY_MAX_S)
                continue
            self._metrics.handle_seconds.labels(*self._labels).observe(
                time.perf_counter() - started
            )
            self._metrics.batch_size.labels(*self._labels).observe(len(deliveries))
            if paused:
                log.info("store_recovered", consumer=self._sub.durable, stream=self._sub.stream)
                self._readiness.store_recovered(self._key)
                if self._source is not None:
                    await self._source.resume()
            return

    async def _wait_or_stop(self, delay: float) -> None:
        try:
            await asyncio.wait_for(self._stop.wait(), delay)
        except TimeoutError:
            return
        raise Stopping

    # -- acks, dead letters, heartbeats -------------------------------------------------

    async def _ack(self, msgs: list[Msg]) -> None:
        assert self.binding is not None
        if self.binding.ack_all:
            # Acking the highest sequence acks everything below it: one ack per batch.
            for msg in reversed(msgs):
                if not msg._ackd:
                    await msg.ack()
                    return
            return
        for msg in msgs:
            if not msg._ackd:
                await msg.ack()

    async def _dead_letter(
        self,
        msg: Msg,
        exc: BaseException,
        *,
        event_id: object | None,
        deliveries: int | None = None,
    ) -> None:
        meta = msg.metadata
        reason = exc.reason if isinstance(exc, EventRejected) else str(exc)
        letter = DeadLetter(
            worker=self.worker,
            stream=meta.stream,
            seq=meta.sequence.stream,
            subject=msg.subject,
            error_class=type(exc).__name__,
            error=reason,
            deliveries=deliveries or meta.num_delivered,
            time=datetime.now(UTC),
            data=msg.data,
            event_id=str(event_id) if event_id is not None else None,
        )
        # The dead letter is stored before the original is terminated: a crash in between
        # redelivers the original and the DLQ's duplicate window drops the second copy.
        await publish_dead_letter(self._js, letter)
        await self._nc.publish(msg.reply, f"+TERM {letter.error_class}".encode())
        msg._ackd = True
        self._metrics.dead_lettered.labels(*self._labels, letter.error_class).inc()
        log.warning(
            "dead_lettered",
            consumer=self._sub.durable,
            subject=msg.subject,
            seq=meta.sequence.stream,
            event_id=letter.event_id,
            error_class=letter.error_class,
            error=reason,
        )

    async def _nak(self, msgs: list[Msg]) -> None:
        for msg in msgs:
            if not msg._ackd and self._nc.is_connected:
                try:
                    await msg.nak()
                except Exception as exc:
                    log.debug("nak_failed", error=str(exc))

    async def _heartbeat(self, binding: ConsumerBinding) -> None:
        """Keep held messages from being redelivered while a batch is slow or the store is down."""
        interval = max(binding.shortest_ack_wait_s / 3, 0.2)
        seen: set[int] = set()
        while True:
            await asyncio.sleep(interval)
            if self._source is None:
                continue
            buffered = self._source.held()
            # Buffered at the previous beat already: waiting for a while behind slow batches.
            waiting = [m for m in buffered if id(m) in seen]
            seen = {id(m) for m in buffered}
            held = [*self._orphans.holding(), *buffered]
            # Taken for a while: a slow commit, and the batch decoded behind it.
            now = time.monotonic()
            in_hand = [
                m
                for d in (self._committing, self._next)
                if d is not None and now - d.taken_at > interval
                for m in d.msgs
            ]
            if in_hand:
                held += in_hand
            elif not self._orphans.active and self._readiness.store_error is None:
                if not waiting:
                    continue
                held = waiting
            for msg in held:
                if not msg._ackd:
                    await msg.in_progress()

    async def _sweep_exhausted(self, binding: ConsumerBinding) -> None:
        """Dead-letter what the server gave up redelivering (see ``fleet_runtime.exhausted``)."""
        sweeper = ExhaustedSweeper(
            self._js, worker=self.worker, stream=binding.stream, durable=binding.durable
        )
        while True:
            try:
                for letter in await sweeper.sweep():
                    self._metrics.dead_lettered.labels(*self._labels, letter.error_class).inc()
            except Exception as exc:
                log.warning("exhausted_sweep_failed", consumer=binding.durable, error=str(exc))
            await asyncio.sleep(_SWEEP_EVERY_S)

    async def _report_lag(self) -> None:
        while True:
            try:
                info = await self._js.consumer_info(self._sub.stream, self._sub.durable)
                self._metrics.num_pending.labels(*self._labels).set(info.num_pending or 0)
                self._metrics.num_ack_pending.labels(*self._labels).set(info.num_ack_pending or 0)
            except Exception as exc:
                log.debug("lag_report_failed", error=str(exc))
            await asyncio.sleep(5.0)
