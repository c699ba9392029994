"""Error types the runtime and the CLI raise for problems a user can fix."""

from __future__ import annotations


class UserError(Exception):
    """A mistake in input, config or environment: shown as one message and a fix, no traceback."""

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        super().__init__(message)
        self.fix = fix


class ConfigError(UserError):
    """Invalid settings, streams.yaml content or command-line input."""


class StoreUnavailable(Exception):
    """The store cannot be reached or timed out: not bad input. The worker pauses and retries."""


class EventRejected(Exception):
    """A handler refuses one event for good (e.g. invalid for the entity's state).

    The runtime dead-letters that event with ``reason`` at once, without retries, and
    applies the rest of the batch.
    """

    def __init__(self, event_id: object, reason: str) -> None:
        super().__init__(f"event {event_id} rejected: {reason}")
        self.event_id = event_id
        self.reason = reason


class ConsumerMissing(UserError):
    """The durable consumer a worker binds to is not on the server."""
