"""The orphan guard: deliveries still pending for a consumer instance that died.

When a worker is killed, the server keeps counting the messages it had been handed as
pending until their ack wait runs out; only then are they redelivered. A new instance
that pulled right away would get newer messages first and, committing them, move the
checkpoint past events it has not seen yet. The guard prevents that:

1. it waits until the orphans are due for redelivery before the first pull (redeliveries
   are served before new messages, in sequence order);
2. it holds any newer message (at most about a batch: the worker stops pulling while it
   holds that many) until every orphan is back, then releases orphans first, sorted;
3. if orphans stay missing past the deadline, it asks the server: while the consumer still
   counts more pending messages than the worker holds, it keeps waiting; when it does
   not, the missing ones were given up by the server (max_deliver) and are reported.

Holding few messages also matters for max_deliver: every message handed to a process
that dies unprocessed uses up one of its deliveries.

The released orphans are then committed one at a time (``ConsumerLoop``): if one of them
is what killed the previous process (a crash loop), the ones before it are applied and
acked before it is handled again, and only it and the ones after it use up deliveries
until the server gives them up (dead-lettered from its advisories). The lowest stream
sequence among those dead letters is the event that kills the process. (The ones after
it cannot be kept out: the server redelivers in the order redeliveries fall due, not in
stream order, so they come back before or with it.)
"""

from __future__ import annotations

import time

from nats.aio.msg import Msg
from nats.js.api import ConsumerInfo

from fleet_runtime.binding import ConsumerBinding, ack_position
from fleet_runtime.logs import get_logger

log = get_logger("fleet_runtime.orphans")


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
        self.due_at = now + first_wait + 0.25
        self._wait_s = max(binding.ack_wait_s, *binding.backoff_s, 1.0)
        self._deadline = now + 2 * self._wait_s + 5.0
        log.info(
            "orphaned_deliveries",
            consumer=self._durable,
            count=self.expected,
            up_to_seq=self.barrier_seq,
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
            log.error(
                "orphans_not_redelivered",
                consumer=self._durable,
                expected=self.expected,
                received=len(self._orphans),
                note="the server stopped redelivering them (max_deliver); they are "
                "dead-lettered from its MAX_DELIVERIES advisories (DeliveriesExhausted)",
            )
        released = [self._orphans[s] for s in sorted(self._orphans)]
        released += sorted(self._held_after, key=lambda m: ack_position(m.reply)[1])
        self._orphans = {}
        self._held_after = []
        self.expected = 0
        return released

    @property
    def past_deadline(self) -> bool:
        """Whether the wait for missing orphans has run out (the server is asked then)."""
        return time.monotonic() >= self._deadline
