"""What a handler receives: validated events with their stream positions, in stream order."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, TypeVar

from nats.aio.msg import Msg

P = TypeVar("P")


class Delivery(NamedTuple, Generic[P]):
    """One decoded event and where it sits in its stream.

    A named tuple rather than a frozen dataclass: the consume loop builds one per message,
    and a frozen dataclass's ``__init__`` costs about a microsecond more per event (one
    ``object.__setattr__`` per field). Immutable either way.
    """

    event: Any
    """The decoded event: an ``Event``, or what the subscription's own decoder returns."""
    subject: str
    stream: str
    stream_seq: int
    num_delivered: int
    msg: Msg

    @property
    def data(self) -> P:
        """The typed payload of the event."""
        payload: P = self.event.data
        return payload


@dataclass(frozen=True, slots=True)
class Batch(Generic[P]):
    """Events handed to one handler call, in stream order, with the checkpoint they advance.

    ``checkpoint`` names the (consumer, partition) position a store adapter must record in
    the same transaction as the effects: the highest ``stream_seq`` it applied. Events at
    or below the stored position were applied before and must change nothing.
    """

    deliveries: Sequence[Delivery[P]]
    checkpoint: str

    def __len__(self) -> int:
        return len(self.deliveries)

    def __iter__(self) -> Iterator[Delivery[P]]:
        return iter(self.deliveries)

    @property
    def last_seq(self) -> int:
        """The highest stream sequence in the batch (the new checkpoint after it commits)."""
        return self.deliveries[-1].stream_seq

    def after(self, applied_seq: int) -> Batch[P]:
        """The part of the batch that the stored checkpoint ``applied_seq`` has not covered."""
        return Batch([d for d in self.deliveries if d.stream_seq > applied_seq], self.checkpoint)
