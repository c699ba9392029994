"""The replay engine: stream -> the worker's own handlers -> shadow store -> atomic swap.

One ephemeral ordered push consumer (callback delivery, no acks) per subscription reads
the durable's filter from the chosen start (a worker with one subscription per stream has
one lane per stream). Its callback only buffers messages; the engine
takes them in wide batches, decodes them as the consume loop does and calls the
worker's handlers bound to the shadow store (``ReplayTarget.subscriptions``). Once the
shadow has caught up with the stream, ``ReplayTarget.swap`` locks the live checkpoint,
lets the engine apply whatever the live worker had committed beyond the shadow
(``catch_up``), and swaps. See docs/replay.md for why nothing is applied twice or skipped.
A signal (``interrupt``) stops the replay with live untouched until the adapter's
``catch_up.before_commit()``; the engine checks it between batches and swap attempts.
With ``--from-archive`` a lane first applies the archived messages (``archive``) and its
ordered consumer starts at the archive's end + 1.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig, DeliverPolicy

from fleet_events import DecodeError
from fleet_runtime.binding import Subscription, stream_seq
from fleet_runtime.delivery import Batch, Delivery
from fleet_runtime.errors import ConfigError, EventRejected, StoreUnavailable, UserError
from fleet_runtime.logs import get_logger
from fleet_runtime.replay.archive import StreamArchive, archive_start
from fleet_runtime.replay.interrupt import Interrupt
from fleet_runtime.replay.lanes import Lane, LaneCatchUp
from fleet_runtime.replay.plan import ReplayPlan, ReplayReport
from fleet_runtime.replay.progress import ReplayProgress, SilentProgress
from fleet_runtime.replay.source import resolve_sources
from fleet_runtime.replay.target import (
    CompletesShadow,
    ReplayRefused,
    ReplayTarget,
    SwapBehind,
    SwapResult,
)
from fleet_runtime.topology.subjects import covers

log = get_logger("fleet_runtime.replay")

_PROGRESS_EVERY_S = 0.2
BATCH_SIZE = 5000
"""Events per store write when neither the caller nor the store names another size."""


class ReplayEngine:
    """Rebuild one worker's store through its ``ReplayTarget`` while the worker keeps running."""

    def __init__(
        self,
        nc: NATS,
        target: ReplayTarget,
        *,
        batch_size: int | None = None,
        swap_attempts: int = 20,
        catch_up_timeout_s: float = 5.0,
        progress: ReplayProgress | None = None,
        archive: StreamArchive | None = None,
        interrupt: Interrupt | None = None,
    ) -> None:
        self._nc = nc
        self._js = nc.jetstream()
        self._target = target
        # A store may write wider batches than the default (``ReplayTarget`` may name its
        # own ``replay_batch_size``): a replay has no acks to wait for.
        preferred: int = getattr(target, "replay_batch_size", BATCH_SIZE)
        self._batch_size = batch_size or preferred
        self._swap_attempts = swap_attempts
        self._catch_up_timeout_s = catch_up_timeout_s
        self._interrupt = interrupt or Interrupt()
        self._progress = progress or SilentProgress()
        self._archive = archive
        self._report = ReplayReport()
        self._lanes: list[Lane] = []
        self._checkpoint = ""
        self._last_progress = 0.0
        self._first_at: float | None = None

    async def run(self, plan: ReplayPlan) -> ReplayReport:
        """Rebuild, then swap (or compare, for a dry run). Live is untouched on any error."""
        started = time.monotonic()
        if plan.from_archive and self._archive is None:
            raise ConfigError("--from-archive needs a stream archive", fix="install backup-runner")
        sources = await resolve_sources(self._js, self._target, plan)
        archived = await self._archive_ends(sources) if plan.from_archive else {}
        durable = sources[0][0].durable
        self._checkpoint = durable if plan.partition is None else f"{durable}-p{plan.partition}"
        self._interrupt.check()
        self._report.cleaned = await self._target.prepare()
        # Bound again now that the shadow store is open.
        bound = {sub.stream: sub for sub in self._target.subscriptions()}
        self._lanes = [Lane(bound[sub.stream], subject) for sub, subject in sources]
        if self._report.cleaned:
            self._progress.note(self._report.cleaned)
        swapped = False
        consumers: list[Any] = []
        try:
            for lane in self._lanes:
                await self._apply_archive(lane, archived.get(lane.stream, 0))
            for lane in self._lanes:
                consumers.append(await self._subscribe(lane, plan, archived.get(lane.stream, 0)))
                await self._check_meets(lane, archived.get(lane.stream, 0))
            await self._drain()
            if self._first_at is not None:
                self._report.apply_seconds = time.monotonic() - self._first_at
            if isinstance(self._target, CompletesShadow):
                note = await self._target.complete_shadow()
                if note:
                    self._progress.note(note)
            if plan.dry_run:
                self._report.compared = await self._target.compare(LaneCatchUp(self))
            else:
                self._report.swap = await self._swap(plan)
                swapped = True
        finally:
            for consumer in consumers:
                await consumer.unsubscribe()
            self._report.positions = {lane.stream: lane.position for lane in self._lanes}
            if not swapped:
                await self._target.discard()
            self._report.seconds = time.monotonic() - started
            self._progress.update(self._report.applied, self._report.applied)
        return self._report

    async def _archive_ends(self, sources: Sequence[tuple[Subscription, str]]) -> dict[str, int]:
        """Per stream, the last archived sequence to read (0: the stream holds everything)."""
        assert self._archive is not None
        ends = {}
        for sub, subject in sources:
            info = await self._js.stream_info(sub.stream)
            extent = await self._archive.extent(sub.stream)
            ends[sub.stream] = archive_start(
                sub.stream, subject, extent, int(info.state.first_seq or 1)
            )
            if ends[sub.stream]:
                self._report.archived[sub.stream] = ends[sub.stream]
        return ends

    async def _check_meets(self, lane: Lane, through: int) -> None:
        """Refuse when the stream dropped what follows the archive while it was read."""
        if not through:
            return
        first = int((await self._js.stream_info(lane.stream)).state.first_seq or 1)
        if first > through + 1:
            raise ReplayRefused(
                f"{lane.stream} {through + 1}-{first - 1} expired from the stream while the "
                "archive was read; nothing swapped",
                fix="run a stream backup (it archives them if still there), then the replay again",
            )

    async def _apply_archive(self, lane: Lane, through: int) -> None:
        """Apply ``lane``'s archived messages up to ``through`` (the lane's filter only)."""
        if not through:
            return
        assert self._archive is not None
        total = sum(self._report.archived.values())
        reached = 0
        async for chunk in self._archive.messages(lane.stream, through):
            msgs = [m for m in chunk if covers(lane.subject, m.subject)]
            if chunk and chunk[-1].seq <= reached:
                raise ReplayRefused(
                    f"the archive of {lane.stream} repeats sequences at {chunk[0].seq}",
                    fix="check the archive with `fleet backup verify` on its stream backups",
                )
            if chunk:
                reached = chunk[-1].seq
            for start in range(0, len(msgs), self._batch_size):
                self._interrupt.check()
                part = msgs[start : start + self._batch_size]
                if self._first_at is None:
                    self._first_at = time.monotonic()
                run = []
                for m in part:
                    event = self._decoded(lane, m.data)
                    if event is not None:
                        raw = Msg(self._nc, subject=m.subject, data=m.data, headers=m.headers)
                        run.append(Delivery(event, m.subject, lane.stream, m.seq, 1, raw))
                applied = self._report.applied
                await self._apply(lane.sub, run)
                self._report.from_archive += self._report.applied - applied
                self._progress.update(self._report.applied, max(total, self._report.applied))
        if reached < through:
            raise ReplayRefused(
                f"the archive of {lane.stream} ended at {reached}, its segments name {through}",
                fix="check the archive with `fleet backup verify` on its stream backups",
            )
        lane.position = through

    def _decoded(self, lane: Lane, data: bytes) -> Any:
        """The event the live worker would handle, or None for what it dead-letters."""
        try:
            return lane.decode(data)
        except (DecodeError, EventRejected):
            self._report.invalid += 1
            return None

    async def _subscribe(self, lane: Lane, plan: ReplayPlan, after: int = 0) -> Any:
        config = ConsumerConfig()
        policy = DeliverPolicy.ALL
        if after:
            policy = DeliverPolicy.BY_START_SEQUENCE
            config.opt_start_seq = after + 1
        elif plan.from_seq is not None:
            policy = DeliverPolicy.BY_START_SEQUENCE
            config.opt_start_seq = plan.from_seq
        elif plan.since is not None:
            policy = DeliverPolicy.BY_START_TIME
            config.opt_start_time = plan.since
        consumer = await self._js.subscribe(
            lane.subject,
            stream=lane.stream,
            cb=lane.deliver,
            ordered_consumer=True,
            deliver_policy=policy,
            config=config,
        )
        info = await consumer.consumer_info()
        lane.pending = int(info.num_pending or 0)
        return consumer

    async def _drain(self) -> None:
        """Apply until the shadow has everything each stream held when its last message came."""
        idle_s = self._catch_up_timeout_s * 6
        for lane in self._lanes:
            while lane.busy:
                self._interrupt.check()
                try:
                    await lane.wait(idle_s)
                except TimeoutError:
                    raise UserError(
                        f"no message from stream {lane.stream} for {idle_s:.0f} s with "
                        f"{lane.pending} still pending; nothing swapped",
                        fix="check the NATS server and run the replay again",
                    ) from None
                await self._apply_from(lane)

    async def _catch_up(self, lane: Lane, seq: int) -> int:
        """Apply exactly up to ``seq`` (bounded by the catch-up timeout); the position reached.

        Stopping at ``seq`` rather than at the end of what is buffered keeps the work done
        while the live worker is held short, and lets a dry run compare at one position.
        """
        # Catching up again means the adapter's last commit attempt did not happen.
        self._interrupt.not_committed()
        deadline = time.monotonic() + self._catch_up_timeout_s
        while lane.position < seq:
            self._interrupt.check()
            try:
                await lane.wait(max(deadline - time.monotonic(), 0.0))
            except TimeoutError:
                raise SwapBehind(
                    f"shadow at {lane.position}, live at {seq} on {lane.stream}"
                ) from None
            if lane.next_seq() > seq:
                # No message of the filter lies between the position and ``seq``.
                lane.position = seq
                break
            await self._apply_from(lane, limit=seq)
        self._report.position = self._lanes[0].position
        return lane.position

    async def _swap(self, plan: ReplayPlan) -> SwapResult:
        for attempt in range(1, self._swap_attempts + 1):
            self._interrupt.check()
            self._report.swap_attempts = attempt
            try:
                return await self._target.swap(LaneCatchUp(self), keep_old=plan.keep_old)
            except SwapBehind as exc:
                self._progress.note(f"swap attempt {attempt}: live worker ahead ({exc}); retrying")
                await self._drain()
        raise UserError(
            f"the live worker stayed ahead of the replay through {self._swap_attempts} swap "
            f"attempts; {self._target.description} is untouched and the shadow removed",
            fix="run the replay again when the publish rate is lower",
        )

    async def _apply_from(self, lane: Lane, limit: int | None = None) -> None:
        """Apply what is buffered, one batch at most (up to ``limit``, if given)."""
        self._interrupt.check()
        msgs = lane.take(self._batch_size, limit)
        if not msgs:
            return
        if self._first_at is None:
            self._first_at = time.monotonic()
        await self._apply_msgs(lane, msgs)
        now = time.monotonic()
        if now - self._last_progress >= _PROGRESS_EVERY_S:
            self._last_progress = now
            pending = sum(lane.pending for lane in self._lanes)
            self._progress.update(self._report.applied, self._report.applied + pending)

    async def _apply_msgs(self, lane: Lane, msgs: Sequence[Msg]) -> None:
        """Decode like the consume loop; skip what the live worker dead-letters."""
        # The loop every replayed message goes through: names bound once, no call that
        # the message does not need (the stream is the lane's, every delivery the first).
        decode = lane.decode
        stream = lane.stream
        run: list[Delivery[Any]] = []
        append = run.append
        invalid = 0
        for msg in msgs:
            try:
                event = decode(msg.data)
            except (DecodeError, EventRejected):
                invalid += 1
                continue
            append(Delivery(event, msg.subject, stream, stream_seq(msg.reply), 1, msg))
        self._report.invalid += invalid
        await self._apply(lane.sub, run)
        last = msgs[-1]
        lane.position = stream_seq(last.reply)
        self._report.position = self._lanes[0].position
        lane.pending = int(last.reply.rsplit(".", 1)[-1])

    async def _apply(self, sub: Subscription, deliveries: list[Delivery[Any]]) -> None:
        remaining = deliveries
        while remaining:
            try:
                await sub.handler(Batch(remaining, self._checkpoint))
                self._report.applied += len(remaining)
                return
            except StoreUnavailable as exc:
                raise UserError(
                    f"the store stopped answering during the replay ({exc}); "
                    f"{self._target.description} is untouched",
                    fix="check the store, then run the replay again (it removes the shadow)",
                ) from None
            except EventRejected as rej:
                idx = next((i for i, d in enumerate(remaining) if d.event.id == rej.event_id), None)
                if idx is None:
                    raise
                await self._apply(sub, remaining[:idx])
                self._report.rejected += 1
                log.info("replay_event_rejected", seq=remaining[idx].stream_seq, reason=rej.reason)
                remaining = remaining[idx + 1 :]
