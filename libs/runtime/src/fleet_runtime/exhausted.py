"""Messages the server stopped redelivering: from its MAX_DELIVERIES advisories to the DLQ.

A worker dead-letters an event itself when its handler keeps failing. But when the worker
*process* dies on an event every time (killed, out of memory), it never gets to: after
``max_deliver`` deliveries the server gives the message up, publishes an advisory on
``$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.<stream>.<consumer>`` and moves on; with
``ack_policy: all`` the next ack then covers it. Without more, that event would be lost.

The ``EXHAUSTED`` stream (streams.yaml) stores those advisories, so none is missed while
no worker runs. Each consumer loop sweeps its own consumer's advisories: it reads the
original message by sequence, stores a dead letter (class ``DeliveriesExhausted``) and
only then deletes the advisory. A crash in between sweeps the advisory again; the DLQ's
duplicate window drops the second dead letter, and past it a redrive of both copies is
still applied once (every store write is idempotent).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

from fleet_runtime.deadletter import DeadLetter, publish_dead_letter
from fleet_runtime.logs import get_logger

log = get_logger("fleet_runtime.exhausted")

EXHAUSTED_STREAM = "EXHAUSTED"
ADVISORY_SUBJECT = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES"
ERROR_CLASS = "DeliveriesExhausted"
# JetStream API error codes a NotFoundError carries.
_NO_MESSAGE = 10037
_NO_STREAM = 10059


def advisory_subject(stream: str, durable: str) -> str:
    """The subject of one consumer's MAX_DELIVERIES advisories."""
    return f"{ADVISORY_SUBJECT}.{stream}.{durable}"


@dataclass(frozen=True)
class Exhausted:
    """One advisory: the message at ``stream_seq`` was delivered ``deliveries`` times."""

    advisory_seq: int
    stream: str
    consumer: str
    stream_seq: int
    deliveries: int

    @classmethod
    def parse(cls, advisory_seq: int, data: bytes) -> Exhausted:
        """Read the advisory's JSON body (``stream``, ``consumer``, ``stream_seq``, ...)."""
        body = json.loads(data)
        return cls(
            advisory_seq=advisory_seq,
            stream=str(body["stream"]),
            consumer=str(body["consumer"]),
            stream_seq=int(body["stream_seq"]),
            deliveries=int(body.get("deliveries", 0)),
        )


def reason(item: Exhausted) -> str:
    """Why the dead letter exists, and what to do about it."""
    return (
        f"the server stopped redelivering it after {item.deliveries} deliveries without an "
        "ack or a dead letter: the worker process stopped while handling it each time "
        "(killed, out of memory); fix the cause, then `fleet dlq redrive`"
    )


class ExhaustedSweeper:
    """Moves one consumer's given-up messages to the DLQ (see the module docstring)."""

    def __init__(self, js: JetStreamContext, *, worker: str, stream: str, durable: str) -> None:
        self._js = js
        self._worker = worker
        self._stream = stream
        self._subject = advisory_subject(stream, durable)
        self._warned = False
        self._unreadable: set[int] = set()

    async def sweep(self) -> list[DeadLetter]:
        """Dead-letter every advisory of this consumer now stored; returns the letters."""
        letters: list[DeadLetter] = []
        seq = 1
        while True:
            try:
                raw = await self._js.get_msg(EXHAUSTED_STREAM, seq, self._subject, next=True)
            except NotFoundError as exc:
                if exc.err_code == _NO_STREAM and not self._warned:
                    self._warned = True
                    log.warning(
                        "exhausted_stream_missing",
                        stream=EXHAUSTED_STREAM,
                        note="messages the server gives up after max_deliver cannot be "
                        "dead-lettered; declare it (streams.yaml) and run `fleet topology "
                        "apply`",
                    )
                return letters
            assert raw.seq is not None
            try:
                item = Exhausted.parse(raw.seq, raw.data or b"")
            except (ValueError, KeyError, TypeError) as exc:
                # Not an advisory the server wrote: leave it for a human (said once), and
                # look further.
                if raw.seq not in self._unreadable:
                    self._unreadable.add(raw.seq)
                    log.error("exhausted_advisory_unreadable", seq=raw.seq, error=str(exc))
                seq = raw.seq + 1
                continue
            letter = await self._letter(item)
            await publish_dead_letter(self._js, letter)
            await self._js.delete_msg(EXHAUSTED_STREAM, item.advisory_seq)
            log.error(
                "delivery_exhausted_dead_lettered",
                consumer=item.consumer,
                stream=item.stream,
                seq=item.stream_seq,
                deliveries=item.deliveries,
                event_id=letter.event_id,
            )
            letters.append(letter)
            seq = item.advisory_seq + 1

    async def _letter(self, item: Exhausted) -> DeadLetter:
        try:
            original = await self._js.get_msg(item.stream, item.stream_seq)
        except NotFoundError:
            # Gone by the stream's own limits (max_age): the record still names it.
            return DeadLetter(
                worker=self._worker,
                stream=item.stream,
                seq=item.stream_seq,
                subject=f"gone.{item.stream}.{item.stream_seq}",
                error_class=ERROR_CLASS,
                error=reason(item) + "; the original is no longer in the stream",
                deliveries=item.deliveries,
                time=datetime.now(UTC),
                data=b"",
            )
        headers = original.headers or {}
        return DeadLetter(
            worker=self._worker,
            stream=item.stream,
            seq=item.stream_seq,
            subject=original.subject or "?",
            error_class=ERROR_CLASS,
            error=reason(item),
            deliveries=item.deliveries,
            time=datetime.now(UTC),
            data=original.data or b"",
            event_id=headers.get("Nats-Msg-Id"),
        )
