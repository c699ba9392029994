"""The first stage of the consume loop: a batch of messages decoded into commit steps.

The loop decodes batch N+1 while batch N's handler call (its store transaction) is in
flight, so the worker's CPU work overlaps with the store's. Decoding never acts on
anything: a message that does not decode becomes a ``Refused`` step, and the commit stage
dead-letters it in its place, after the good events before it are committed (with ack
policy ``all`` a term acks everything below it).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from nats.aio.msg import Msg

from fleet_events import DecodeError, Event, Payload, decode
from fleet_runtime.binding import Subscription, ack_position
from fleet_runtime.delivery import Delivery
from fleet_runtime.errors import EventRejected

# Messages decoded between two yields to the event loop: about a millisecond of work, so
# the replies of the transaction in flight are read without waiting for a whole batch.
YIELD_EVERY = 64


@dataclass(frozen=True, slots=True)
class Refused:
    """A message that did not decode, or is of a type the subscription does not accept."""

    msg: Msg
    error: DecodeError | EventRejected
    event_id: object | None


Step = list[Delivery[Any]] | Refused
"""A run of decoded events handed to the handler together, or one message to dead-letter."""


@dataclass(frozen=True, slots=True)
class Decoded:
    """A batch ready to commit: its messages (for the ack) and its steps, in stream order."""

    msgs: list[Msg]
    steps: list[Step]
    taken_at: float
    """``time.monotonic()`` when the loop took the messages (for in-progress heartbeats)."""


def decode_accepted(raw: bytes, accepts: tuple[type[Payload], ...]) -> Event[Any]:
    """The event in ``raw`` as a subscription without its own decoder gets it.

    Raises ``DecodeError``, or ``EventRejected`` for a valid event whose payload is not
    one of ``accepts`` (any is accepted when it is empty).
    """
    event = decode(raw)
    if accepts and not isinstance(event.data, accepts):
        wanted = ", ".join(c.event_type for c in accepts)
        raise EventRejected(event.id, f"type {event.type} is not one of: {wanted}")
    return event


async def decode_batch(msgs: list[Msg], sub: Subscription, *, taken_at: float) -> Decoded:
    """Decode ``msgs`` in order into runs of deliveries separated by refused messages.

    Yields to the event loop every ``YIELD_EVERY`` messages.
    """
    steps: list[Step] = []
    run: list[Delivery[Any]] = []
    own_decode = sub.decode
    accepts = sub.accepts
    for i, msg in enumerate(msgs):
        if i and not i % YIELD_EVERY:
            await asyncio.sleep(0)
        stream, stream_seq, num_delivered = ack_position(msg.reply)
        try:
            if own_decode is not None:
                event = own_decode(msg.data)
            else:
                event = decode_accepted(msg.data, accepts)
        except (DecodeError, EventRejected) as exc:
            if run:
                steps.append(run)
                run = []
            steps.append(Refused(msg, exc, getattr(exc, "event_id", None)))
            continue
        # Positional: the per-message cost of keyword arguments shows at 50k events/s.
        run.append(Delivery(event, msg.subject, stream, stream_seq, num_delivered, msg))
    if run:
        steps.append(run)
    return Decoded(msgs, steps, taken_at)
