"""Typed event publisher: one subject per event, `Nats-Msg-Id` = event id, retried safely.

A publish whose acknowledgement times out may still have been stored. Retrying with the
same `Nats-Msg-Id` lets the stream drop the second copy inside its duplicate window, so
a retried publish is stored once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import nats.errors
import nats.js.errors
from nats.js.api import PubAck
from nats.js.client import JetStreamContext

from fleet_events import Event, encode, subject_for
from fleet_runtime.logs import get_logger

log = get_logger("fleet_runtime.publisher")

_RETRYABLE = (
    nats.errors.TimeoutError,
    nats.errors.NoRespondersError,
    nats.js.errors.NoStreamResponseError,
    nats.errors.ConnectionReconnectingError,
    asyncio.TimeoutError,
)


class PublishFailed(Exception):
    """An event could not be stored after every retry.

    ``stored``: of a sequence of messages published together, how many leading ones the
    stream confirmed before this one failed.
    """

    def __init__(self, message: str, *, stored: int = 0) -> None:
        super().__init__(message)
        self.stored = stored


RawMessage = tuple[str, bytes, str]
"""A pre-encoded message: (subject, data, ``Nats-Msg-Id``)."""


def msg_id_headers(event: Event[Any]) -> dict[str, str]:
    """Headers that make the stream deduplicate ``event`` by its id."""
    return {"Nats-Msg-Id": str(event.id)}


class EventPublisher:
    """Publishes fleet events to JetStream and waits until the stream has stored them."""

    def __init__(
        self,
        js: JetStreamContext,
        *,
        timeout_s: float = 2.0,
        attempts: int = 8,
        backoff_s: float = 0.2,
        max_backoff_s: float = 5.0,
    ) -> None:
        self._js = js
        self._timeout = timeout_s
        self._attempts = attempts
        self._backoff = backoff_s
        self._max_backoff = max_backoff_s

    async def publish(self, event: Event[Any]) -> PubAck:
        """Store one event; ``PubAck.duplicate`` is True when the stream already had it."""
        return await self.publish_raw(subject_for(event), encode(event), str(event.id))

    async def publish_raw(self, subject: str, data: bytes, msg_id: str) -> PubAck:
        """Store pre-encoded bytes under ``msg_id``, retrying timeouts with the same id."""
        delay = self._backoff
        for attempt in range(1, self._attempts + 1):
            try:
                return await self._js.publish(
                    subject, data, timeout=self._timeout, headers={"Nats-Msg-Id": msg_id}
                )
            except _RETRYABLE as exc:
                if attempt == self._attempts:
                    raise PublishFailed(
                        f"publish to {subject} (msg id {msg_id}) failed after {attempt} "
                        f"attempts: {type(exc).__name__}"
                    ) from exc
                log.warning(
                    "publish_retry",
                    subject=subject,
                    msg_id=msg_id,
                    attempt=attempt,
                    error=type(exc).__name__,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max_backoff)
        raise AssertionError("unreachable")  # pragma: no cover

    async def publish_many(self, events: Sequence[Event[Any]]) -> list[PubAck]:
        """Store many events with many acknowledgements in flight; retries keep each id."""
        return await self.publish_raw_many([(subject_for(e), encode(e), str(e.id)) for e in events])

    async def publish_raw_many(self, messages: Sequence[RawMessage]) -> list[PubAck]:
        """Store pre-encoded messages with every acknowledgement in flight, in order.

        One round trip for all of them instead of one each; they are sent in order on one
        connection, so the stream stores them in that order. A message whose
        acknowledgement fails is retried alone with its id. Raises ``PublishFailed`` with
        ``stored`` = how many leading messages were confirmed.
        """
        futures = [
            await self._js.publish_async(s, d, headers={"Nats-Msg-Id": i}) for s, d, i in messages
        ]
        acks: list[PubAck] = []
        for (subject, data, msg_id), fut in zip(messages, futures, strict=True):
            try:
                acks.append(await asyncio.wait_for(fut, self._timeout))
            except (*_RETRYABLE, nats.js.errors.APIError):
                try:
                    acks.append(await self.publish_raw(subject, data, msg_id))
                except PublishFailed as exc:
                    raise PublishFailed(str(exc), stored=len(acks)) from exc.__cause__
        return acks
