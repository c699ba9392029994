"""The orphan guard: deliveries still pending for a consumer instance that died.

When a worker is killed, the server keeps counting the messages it had been handed as
pending until their ack wait runs out; only then are they redelivered. A new instance
that pulled right away would get newer messages first and, committing them, move the
checkpoint past events it has not seen yet. The guard prevents that:

1. it waits until the orphans are due for redelivery before the first pull (redeliveries
   are served before new messages, in sequence order): a first ack wait after the dead
   process's last delivery (the server's ``last_active``), at most a first ack wait from
   now (in-progress acks may have pushed some later; those the guard waits for);
2. it holds any newer message (at most about a batch: the worker stops pulling while it
   holds that many) until every orphan is back, then releases orphans first, sorted;
3. if orphans are still missing a first backoff after they were due, it asks the server,
   and again every first backoff: while the consumer still counts more pending messages
   than the worker holds, it keeps waiting; when it does not, no missing one will come:
   the server gave it up (max_deliver), or an instance that was still running (a rolling
   update) acked it.

Every delivery counts against max_deliver, and a process killed while it holds a message
uses that delivery up whether it was handling the message or merely holding it (buffered
behind the batch in hand, or held by this guard). So max_deliver is also a crash budget:
an event is given up only after that many processes died with it in their hands.

The released orphans are then committed in groups (``ConsumerLoop``, sizes from
``orphan_groups``), each committed and acked before the next is handled, so if a group
kills the process everything before it is applied:

- groups of 1, 2, 4, 8, … events whenever a crash now still leaves each of them one more
  delivery (``may_group``): one transaction per group, so a thousand orphans take 10
  transactions, not 1,000, and a worker killed again and again faster than it catches
  up still makes progress with every process (a crash loop that does not come from an
  event: a node lost over and over, a deploy loop, the OOM killer);
- one at a time on their last delivery: the events before the one that kills the process
  every time are applied and acked before it is handled again, and only it and the ones
  after it reach max_deliver; the server gives them up and they are dead-lettered from
  its advisories (``fleet_runtime.exhausted``). The lowest stream sequence among those
  dead letters is the event that kills the process. (The ones after it cannot be kept
  out: the server redelivers in the order redeliveries fall due, not in stream order, so
  they come back before or with it.)

Why not one at a time from the second return on (the rule before): one transaction per
orphan made recovery slowest exactly when crashes came fastest. A process killed while it
committed orphans one by one left the rest one delivery closer to the limit: a worker
killed 8 times, each within half a second of its first commit (12,000 events, max_deliver
8), gave up 947 good events that way; grouped, none (``test_crash_loop``). Grouping until
the last delivery keeps the guarantee (the killer lowest, everything before it applied
once) at the price of the killer's group-mates' extra deliveries, which the condition
leaves room for. The other
half of the fix is the budget: streams.yaml gives every ordered consumer 8-10 deliveries
with second and later waits of seconds, not minutes (a redelivery that waits a minute
stalls an ordered consumer that long, and every process killed meanwhile burns the
deliveries of the newer events it holds). Holding fewer messages after a restart was
weighed too: the guard must hold every orphan to put them back in stream order, so it
would not spare them, and pulling less ahead slows the recovery it protects.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

from nats.aio.msg import Msg
from nats.js.api import ConsumerInfo

from fleet_runtime.binding import ConsumerBinding, ack_position, delivery_seq
from fleet_runtime.logs import get_logger

log = get_logger("fleet_runtime.orphans")


FIRST_RETURN = 2
"""``num_delivered`` of an orphan back for the first time (once to the dead process)."""


def may_group(deliveries: Sequence[int], max_deliver: int) -> bool:
    """Whether orphans with these ``num_delivered`` counts may be committed in groups.

    As long as a crash now still leaves every one of them a further delivery
    (``max_deliver`` <= 0: no limit), to be committed one at a time on; orphans on their
    last delivery are committed one at a time.
    """
    if not deliveries or any(d < FIRST_RETURN for d in deliveries):
        return False
    return max_deliver <= 0 or max(deliveries) < max_deliver


def orphan_groups(msgs: Sequence[Msg], *, grouped: bool, largest: int) -> Iterator[list[Msg]]:
    """``msgs`` in consecutive groups: of 1, 2, 4, … (at most ``largest``), or all of one."""
    size = 1
    start = 0
    while start < len(msgs):
        yield list(msgs[start : start + size])
        start += size
        if grouped:
            size = min(size * 2, max(largest, 1))


class OrphanGuard:
    """Holds newer messages back until a dead instance's deliveries are back, in order."""

    def __init__(self, durable: str) -> None:
        self._durable = durable
        self.expected = 0
        self.barrier_seq = 0
        self.due_at = 0.0
        self._wait_s = 0.0
        self._deadline = 0.0
        self._orphans: dict[int, Msg] = {}
        self._held_after: list[Msg] = []

    @property
    def active(self) -> bool:
        """Whether orphans are still expected."""
        return self.expected > 0

    def arm(self, info: ConsumerInfo, binding: ConsumerBinding) -> None:
        """Start guarding if the server counts deliveries nobody holds."""
        if not info.num_ack_pending or info.delivered is None:
            return
        self.expected = info.num_ack_pending
        self.barrier_seq = info.delivered.stream_seq
        first_wait = binding.backoff_s[0] if binding.backoff_s else binding.ack_wait_s
        now = time.monotonic()
        wait = first_wait + 0.25
        last = info.delivered.last_active
        if last is not None:
            # The server's clock: a skew only moves the first pull, the guard still waits.
            since = (datetime.now(UTC) - last).total_seconds()
            wait = min(wait, max(wait - since, 0.0))
        self.due_at = now + wait
        self._wait_s = max(first_wait, 1.0)
        self._deadline = now + first_wait + 0.25 + self._wait_s
        log.info(
            "orphaned_deliveries",
            consumer=self._durable,
            count=self.expected,
            up_to_seq=self.barrier_seq,
        )

    def arm_lost(self, missing: int, barrier_seq: int, binding: ConsumerBinding) -> None:
        """Guard a running process: ``missing`` deliveries never reached it (lost with its
        connection), the first of them below ``barrier_seq`` + 1 in the usual case of first
        deliveries. They come back after their ack wait; newer messages wait for them."""
        first_wait = binding.backoff_s[0] if binding.backoff_s else binding.ack_wait_s
        now = time.monotonic()
        self.expected += missing
        self.barrier_seq = max(self.barrier_seq, barrier_seq)
        self.due_at = now
        self._wait_s = max(first_wait, 1.0)
        self._deadline = now + first_wait + 0.25 + self._wait_s
        log.warning(
            "deliveries_lost",
            consumer=self._durable,
            count=missing,
            below_seq=barrier_seq + 1,
            note="the server sent them but they never arrived (a dropped connection); "
            "newer events wait until they are redelivered",
        )

    def admit(self, msgs: list[Msg]) -> None:
        """Sort arrivals into orphans (at or below the barrier) and newer messages."""
        for msg in msgs:
            seq = ack_position(msg.reply)[1]
            if seq <= self.barrier_seq:
                self._orphans[seq] = msg
            else:
                self._held_after.append(msg)

    def holding(self) -> list[Msg]:
        """Every message the guard holds (for in-progress acks and the nak on stop)."""
        return [*self._orphans.values(), *self._held_after]

    def hoarding(self, limit: int) -> bool:
        """Whether the guard holds enough newer messages that pulling should pause."""
        return len(self._held_after) >= limit

    def ready(self, server_pending: int | None, other_held: int) -> list[Msg] | None:
        """The messages to process now, in order, or None to keep waiting.

        ``server_pending`` is the consumer's num_ack_pending (asked only once the
        deadline passed, else None); ``other_held`` counts messages the worker holds
        outside the guard.
        """
        if len(self._orphans) < self.expected:
            if time.monotonic() < self._deadline or server_pending is None:
                return None
            held = len(self._orphans) + len(self._held_after) + other_held
            if server_pending > held:
                self._deadline = time.monotonic() + self._wait_s
                return None
            log.warning(
                "orphans_not_redelivered",
                consumer=self._durable,
                expected=self.expected,
                received=len(self._orphans),
                note="the server no longer counts them pending: another instance acked them "
                "(a rolling update), or the server stopped redelivering them (max_deliver) and "
                "they are dead-lettered from its MAX_DELIVERIES advisories (DeliveriesExhausted)",
            )
        released = [self._orphans[s] for s in sorted(self._orphans)]
        released += sorted(self._held_after, key=lambda m: ack_position(m.reply)[1])
        self._orphans = {}
        self._held_after = []
        self.expected = 0
        return released

    @property
    def past_deadline(self) -> bool:
        """Whether it is time to ask the server about missing orphans."""
        return time.monotonic() >= self._deadline


class DeliveryGaps:
    """Notices deliveries a running process never received.

    The consumer numbers every delivery it makes (the delivery sequence of the ack
    subject), and one process per durable receives them all, in order. A number skipped
    is a delivery lost on the way (the connection dropped with it in flight). The server
    still counts it pending; with AckPolicy.ALL, acking any later event would ack it too,
    and it would never be redelivered.
    """

    def __init__(self) -> None:
        self.last: int | None = None

    def start_after(self, delivered: int) -> None:
        """The consumer's last delivery sequence when this process bound to it."""
        self.last = delivered

    def first_gap(self, msgs: Sequence[Msg]) -> tuple[int, int] | None:
        """(index of the first message after a gap, deliveries missing in ``msgs``)."""
        at: int | None = None
        missing = 0
        for i, msg in enumerate(msgs):
            seq = delivery_seq(msg.reply)
            if self.last is not None and seq > self.last + 1:
                missing += seq - self.last - 1
                at = i if at is None else at
            self.last = seq if self.last is None else max(self.last, seq)
        return None if at is None else (at, missing)
