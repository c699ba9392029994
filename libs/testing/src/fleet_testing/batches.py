"""Batches as the runtime builds them, for testing handlers and store adapters directly.

A ``Delivery`` carries its NATS message; here it is a detached one (no client), with the
JetStream ack subject the runtime reads the stream position from.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from nats.aio.msg import Msg

from fleet_events import Event, encode, subject_for
from fleet_runtime.delivery import Batch, Delivery


def delivery(
    event: Event[Any], seq: int, stream: str, consumer: str, delivered: int = 1
) -> Delivery[Any]:
    """``event`` at stream sequence ``seq``, delivered ``delivered`` times."""
    subject = subject_for(event)
    msg = Msg(
        _client=None,  # type: ignore[arg-type]
        subject=subject,
        reply=f"$JS.ACK.{stream}.{consumer}.{delivered}.{seq}.{seq}.0.0",
        data=encode(event),
    )
    return Delivery(
        event=event,
        subject=subject,
        stream=stream,
        stream_seq=seq,
        num_delivered=delivered,
        msg=msg,
    )


class Sequencer:
    """Hands out stream sequences and builds batches, as one stream would."""

    def __init__(self, stream: str, checkpoint: str) -> None:
        self._stream = stream
        self._checkpoint = checkpoint
        self._seq = itertools.count(1)

    def batch(self, events: Sequence[Event[Any]], checkpoint: str | None = None) -> Batch[Any]:
        """The next events of the stream as one batch (for ``checkpoint``, default the one
        given at creation)."""
        name = checkpoint or self._checkpoint
        return Batch([delivery(e, next(self._seq), self._stream, name) for e in events], name)
