"""What binds a handler to a durable: the subscription, the consumer's live settings, readiness."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from nats.aio.client import Client as NATS
from nats.js.api import AckPolicy, ConsumerInfo

from fleet_events import Payload
from fleet_runtime.delivery import Batch

Handler = Callable[[Batch[Any]], Awaitable[None]]


def ack_position(reply: str) -> tuple[str, int, int]:
    """(stream, stream sequence, delivery count) from a JetStream ack subject.

    nats-py's ``msg.metadata`` parses every token and builds a datetime per message; the
    consume loop needs three tokens. Ack subjects are
    ``$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>`` or, with a
    domain and account hash, two tokens longer after ``$JS.ACK``.
    """
    tokens = reply.split(".")
    base = 2 if len(tokens) == 9 else 4
    return tokens[base], int(tokens[base + 3]), int(tokens[base + 2])


def stream_seq(reply: str) -> int:
    """The stream sequence of a message, from its ack subject (see above)."""
    tokens = reply.split(".")
    return int(tokens[5 if len(tokens) == 9 else 7])


def delivery_seq(reply: str) -> int:
    """The consumer's delivery sequence of a message, from its ack subject (see above)."""
    tokens = reply.split(".")
    return int(tokens[6 if len(tokens) == 9 else 8])


@dataclass(frozen=True)
class ConsumerBinding:
    """The live settings of a durable consumer that drive retries and acks."""

    stream: str
    durable: str
    ack_all: bool
    ack_wait_s: float
    max_deliver: int
    backoff_s: tuple[float, ...]

    @classmethod
    def from_info(cls, info: ConsumerInfo) -> ConsumerBinding:
        """Read the binding from the server's consumer info."""
        cfg = info.config
        return cls(
            stream=info.stream_name,
            durable=cfg.durable_name or info.name,
            ack_all=cfg.ack_policy == AckPolicy.ALL,
            ack_wait_s=float(cfg.ack_wait or 30.0),
            max_deliver=int(cfg.max_deliver or -1),
            backoff_s=tuple(float(b) for b in (cfg.backoff or ())),
        )

    def retry_delay(self, attempt: int) -> float:
        """Delay before retry number ``attempt`` (1-based), as the server would redeliver."""
        if self.backoff_s:
            return self.backoff_s[min(attempt - 1, len(self.backoff_s) - 1)]
        return self.ack_wait_s

    @property
    def shortest_ack_wait_s(self) -> float:
        """The shortest time the server waits for an ack before it redelivers."""
        return min((self.ack_wait_s, *self.backoff_s))


@dataclass(frozen=True)
class Subscription:
    """A handler bound to a durable consumer declared in streams.yaml."""

    stream: str
    durable: str
    handler: Handler
    accepts: tuple[type[Payload], ...] = ()
    """Payload classes the handler takes; another valid event type is dead-lettered."""
    decode: Callable[[bytes], Any] | None = None
    """The subscription's own decoder, instead of ``fleet_events.decode`` and ``accepts``.

    It returns the object the handler finds in ``Delivery.event`` (which must have the
    event's ``id``) or raises ``fleet_events.DecodeError`` with the reason the message is
    dead-lettered. A service uses it to decode its hot event type into its own form.
    """


class Readiness:
    """Why a worker is or is not ready; read by /readyz and the ready gauge."""

    def __init__(self) -> None:
        self._store_errors: dict[str, str] = {}
        self.bound = False

    @property
    def store_error(self) -> str | None:
        """The store error of a consumer that is paused on it, if any is."""
        return next(iter(self._store_errors.values()), None)

    def store_failed(self, consumer: str, error: str) -> bool:
        """Record that ``consumer`` is paused on a store error; True if it was not before."""
        first = consumer not in self._store_errors
        self._store_errors[consumer] = error
        return first

    def store_recovered(self, consumer: str) -> None:
        """``consumer`` wrote to its store again."""
        self._store_errors.pop(consumer, None)

    def check(self, nc: NATS) -> tuple[bool, str]:
        """(ready, reason)."""
        if not nc.is_connected:
            return False, "NATS disconnected"
        if not self.bound:
            return False, "consumers not bound yet"
        if self.store_error is not None:
            return False, f"store unavailable: {self.store_error}"
        return True, "ok"
