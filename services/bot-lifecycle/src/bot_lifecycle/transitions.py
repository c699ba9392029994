"""The form a start or stop takes inside bot-lifecycle, and the decoder of the BOTS stream.

``StatusChange`` holds what the state machine and the store read of a ``bot.started`` or
``bot.stopped`` event: the envelope's id (text), type and time, and the payload's fields.
It is its own ``data``, so ``logic.decide`` and the store read it as they read an event.

``decode_bot_event`` has two lanes with one result:

- the canonical lane: a start or stop laid out exactly as ``fleet_events.encode`` writes
  a valid one (``fleet_events.canonical``) is read with one regular expression;
- the contract lane: anything else is decoded and validated by the event contract as the
  runtime does for a subscription without its own decoder (``decode_accepted``): a start
  or stop becomes a ``StatusChange``, the other types stay their ``Event``, and what the
  contract refuses raises the ``DecodeError`` or ``EventRejected`` that dead-letters it.

The canonical lane accepts only what the contract accepts, with the same values; where it
is not sure (another layout, an escape, an impossible date) it steps aside for the
contract lane. Tests hold both to that on generated and mutated messages.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from fleet_events import (
    BotCreated,
    BotDeleted,
    BotDeployed,
    BotStarted,
    BotStopped,
    BotUpdated,
    Event,
)
from fleet_events.canonical import SUBJECT_WORD, TEXT, envelope, fullmatch, utc_second
from fleet_runtime.staging import decode_accepted

ACCEPTS = (BotCreated, BotUpdated, BotDeployed, BotStarted, BotStopped, BotDeleted)
"""The event types bot-lifecycle handles; another valid type is dead-lettered."""

# bot_id, version (a JSON integer >= 1, short enough for the version column), the
# deployment and the reason (null or a string without escapes).
_PAYLOAD = (
    r'"bot_id":"(' + SUBJECT_WORD + r')","version":([1-9][0-9]{0,8}),'
    r'"deployment_id":"(' + SUBJECT_WORD + r')","reason":(?:null|"(' + TEXT + r'*)")'
)
_CANONICAL = {
    cls.event_type.encode(): (
        envelope(cls.event_type, cls.schema_version, _PAYLOAD),
        cls.event_type,
    )
    for cls in (BotStarted, BotStopped)
}
# Where the encoder writes the type (after the 36-character id), and its length.
_TYPE_AT = len('{"id":"') + 36 + len('","type":"')
_TYPE_END = _TYPE_AT + len(BotStarted.event_type)


class StatusChange(NamedTuple):
    """A ``bot.started`` or ``bot.stopped`` event as the state machine reads it."""

    id: str
    type: str
    time: datetime
    bot_id: str
    version: int
    deployment_id: str
    reason: str | None

    @property
    def data(self) -> StatusChange:
        """The payload's fields: the change itself (read like ``Event.data``)."""
        return self

    @classmethod
    def of(cls, event: Event[BotStarted] | Event[BotStopped]) -> StatusChange:
        """The change of a validated start or stop."""
        data = event.data
        return cls(
            str(event.id),
            event.type,
            event.time,
            data.bot_id,
            data.version,
            data.deployment_id,
            data.reason,
        )


def canonical_change(raw: bytes) -> StatusChange | None:
    """The change in ``raw`` if it is a valid start or stop in canonical form, else None."""
    lane = _CANONICAL.get(raw[_TYPE_AT:_TYPE_END])
    if lane is None:
        return None
    pattern, event_type = lane
    match = fullmatch(pattern, raw)
    if match is None:
        return None
    event_id, sent, fraction, bot_id, version, deployment_id, reason = match.groups()
    try:
        time = utc_second(sent)
    except ValueError:
        return None
    if fraction is not None:
        time = time.replace(microsecond=int(fraction))
    return StatusChange(event_id, event_type, time, bot_id, int(version), deployment_id, reason)


def decode_bot_event(raw: bytes) -> StatusChange | Event[Any]:
    """A BOTS message as the store takes it: a ``StatusChange`` for a start or stop, else
    the event.

    Raises ``fleet_events.DecodeError`` (malformed or invalid) or ``EventRejected`` (a
    valid event of a type bot-lifecycle does not handle) with the contract's reason.
    """
    change = canonical_change(raw)
    if change is not None:
        return change
    event = decode_accepted(raw, ACCEPTS)
    if type(event.data) is BotStarted or type(event.data) is BotStopped:
        return StatusChange.of(event)
    return event
