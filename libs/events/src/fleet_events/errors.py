"""Typed errors raised when bytes cannot become an event."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic_core import ErrorDetails


class DecodeError(Exception):
    """Bytes could not be decoded into a valid event.

    ``field`` is the dotted path of the offending field (``data.price``) or None when
    the message as a whole is at fault; ``reason`` is human-readable text.
    """

    def __init__(self, reason: str, *, field: str | None = None) -> None:
        self.field = field
        self.reason = reason
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.field is None:
            return self.reason
        return f"{self.field}: {self.reason}"


class MalformedEvent(DecodeError):
    """The message is not JSON, or not a JSON object."""


class InvalidEvent(DecodeError):
    """The message is a JSON object that fails validation.

    ``field``/``reason`` describe the first error; ``errors`` holds all of them as
    pydantic reports them.
    """

    def __init__(
        self, reason: str, *, field: str | None = None, errors: list[ErrorDetails] | None = None
    ) -> None:
        self.errors: list[ErrorDetails] = errors or []
        super().__init__(reason, field=field)

    def __str__(self) -> str:
        text = super().__str__()
        more = len(self.errors) - 1
        if more > 0:
            text += f" (and {more} more error{'s' if more > 1 else ''})"
        return text


class UnknownEventType(DecodeError):
    """The ``type`` names no known payload class."""

    def __init__(self, event_type: str) -> None:
        self.event_type = event_type
        super().__init__(f"unknown event type {event_type!r}", field="type")


class UnknownSchemaVersion(DecodeError):
    """The ``schema_version`` is newer than this code knows, or has no upcaster path."""

    def __init__(self, event_type: str, version: int, current: int, reason: str) -> None:
        self.event_type = event_type
        self.version = version
        self.current = current
        super().__init__(reason, field="schema_version")


class UnexpectedEventType(DecodeError):
    """A valid event of a type the caller does not accept (see ``decode_as``)."""

    def __init__(self, event_type: str, expected: tuple[str, ...]) -> None:
        self.event_type = event_type
        self.expected = expected
        super().__init__(
            f"event type {event_type!r} is not accepted here (expected "
            f"{', '.join(repr(t) for t in expected)})",
            field="type",
        )
