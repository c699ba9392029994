"""The load publisher: a steady rate, retries under the same ``Nats-Msg-Id``, every ack kept.

A publish that fails (a leader election, a node down, a timeout) is retried with the
same message id until the stream answers, so it is stored once. What the stream
acknowledged (stream, sequence, message) is the ground truth the reconciler works from:
nothing the publisher was not told is stored counts as expected, and everything it was
told counts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import nats.errors
import nats.js.errors
from nats.js.client import JetStreamContext

from fleet_testing.chaos.workload import Message, Workload

ACK_TIMEOUT_S = 2.0
GIVE_UP_S = 90.0


class Tamper(Protocol):
    """A bug injected into the suite's own ground truth, to prove the suite can fail."""

    def phantom(self, message: Message) -> bool:
        """Whether to record ``message`` as acked without publishing it (a lost event)."""

    def unrecorded_copy(self, message: Message) -> Message | None:
        """A copy to publish and not record (an event applied twice), or None."""


@dataclass(frozen=True)
class Acked:
    """A message the stream confirmed: where it is stored, and whether it was a copy."""

    stream: str
    seq: int
    message: Message
    duplicate: bool


@dataclass
class PublishLog:
    """Everything one scenario published and what the stream said about it."""

    published: int = 0
    """Messages handed to the stream (a retry of the same message is not counted again)."""
    retries: int = 0
    """Extra attempts after a failed or unanswered publish."""
    acked: list[Acked] = field(default_factory=list)
    given_up: list[Message] = field(default_factory=list)
    """Messages the stream never confirmed within ``GIVE_UP_S`` (not expected anywhere)."""

    @property
    def stored(self) -> list[Acked]:
        """One ack per message id: what the stream holds.

        A message counts whether its ack says ``duplicate`` or not: a retry after an
        unanswered attempt that was in fact stored is acked as a duplicate, and that
        message is in the stream all the same.
        """
        seen: dict[str, Acked] = {}
        for ack in self.acked:
            seen.setdefault(ack.message.msg_id, ack)
        return list(seen.values())

    @property
    def dropped_copies(self) -> int:
        """Publishes the stream answered as duplicates of a message it already held."""
        return sum(1 for a in self.acked if a.duplicate)


async def publish_one(js: JetStreamContext, message: Message, log: PublishLog) -> None:
    """Publish ``message`` until the stream confirms it (or ``GIVE_UP_S`` passes)."""
    log.published += 1
    deadline = time.monotonic() + GIVE_UP_S
    delay = 0.1
    while True:
        try:
            ack = await js.publish(
                message.subject,
                message.data,
                timeout=ACK_TIMEOUT_S,
                headers={"Nats-Msg-Id": message.msg_id},
            )
        except (TimeoutError, nats.errors.Error):
            # APIError (no leader yet), timeouts, no responders, a reconnecting client:
            # the message may or may not be stored; the same id makes the retry safe.
            if time.monotonic() > deadline:
                log.given_up.append(message)
                return
            log.retries += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
            continue
        log.acked.append(Acked(ack.stream, ack.seq, message, bool(ack.duplicate)))
        return


async def run_load(
    js: JetStreamContext,
    workload: Workload,
    *,
    rate: float,
    until: Callable[[], bool],
    log: PublishLog,
    tamper: Tamper | None = None,
) -> None:
    """Publish ``workload`` at ``rate`` messages/s, one at a time, until ``until()`` is true.

    Messages are sent in order and each waits for its ack, so the stream stores them in
    the order generated. A message held up by a fault delays the ones behind it; they go
    out as soon as the stream answers (the schedule catches up). ``tamper`` is the suite's
    self-test: a bug in what the reconciler is told.
    """
    start = time.monotonic()
    n = 0
    while not until():
        for message in workload.next():
            n += 1
            if tamper is not None and tamper.phantom(message):
                log.published += 1
                log.acked.append(Acked(_stream_of(message), -1 - n, message, False))
                continue
            await publish_one(js, message, log)
            copy = None if tamper is None else tamper.unrecorded_copy(message)
            if copy is not None:
                await publish_one(js, copy, PublishLog())
        wait = start + n / rate - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)


def _stream_of(message: Message) -> str:
    return {"bot": "BOTS", "trade": "TRADES", "market": "MARKET"}[message.subject.split(".")[0]]
