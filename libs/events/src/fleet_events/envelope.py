"""The event envelope ``Event[PayloadT]`` and its constructor ``new_event``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar, cast
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, model_validator
from uuid_utils.compat import uuid7

from .payload import Payload
from .scalars import NonEmptyStr, SubjectToken, UtcDatetime

PayloadT = TypeVar("PayloadT", bound=Payload)


def _now() -> datetime:
    return datetime.now(UTC)


class Event(BaseModel, Generic[PayloadT]):
    """One immutable fact published on the fleet's streams.

    ``id`` is a UUIDv7, so ids sort by creation time; it is also the JetStream
    ``Nats-Msg-Id``, which makes a republish inside the duplicate window a no-op.
    ``type`` and ``schema_version`` always match the payload class (checked on build).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    id: UUID = Field(default_factory=uuid7)
    type: NonEmptyStr
    schema_version: Annotated[int, Field(ge=1, strict=True)]
    source: NonEmptyStr
    """Name of the publishing service."""
    time: UtcDatetime = Field(default_factory=_now)
    key: SubjectToken
    """The entity the event is about (bot id, symbol, backup id…)."""
    correlation_id: UUID | None = None
    causation_id: UUID | None = None
    # SerializeAsAny: an Event[Payload] holding a TradeExecuted must serialise the
    # TradeExecuted fields, not the (empty) field set of the declared Payload base.
    data: SerializeAsAny[PayloadT]

    @model_validator(mode="after")
    def _matches_payload(self) -> Event[PayloadT]:
        payload_cls = type(self.data)
        if self.type != payload_cls.event_type:
            raise ValueError(
                f"type {self.type!r} does not match payload {payload_cls.__name__} "
                f"({payload_cls.event_type!r})"
            )
        if self.schema_version != payload_cls.schema_version:
            raise ValueError(
                f"schema_version {self.schema_version} is not the current version "
                f"{payload_cls.schema_version} of {payload_cls.event_type!r}"
            )
        return self


PayloadV = TypeVar("PayloadV", bound=Payload)


_EVENT_CLASSES: dict[type[Payload], type[Event[Any]]] = {}


def event_class(payload_cls: type[PayloadV]) -> type[Event[PayloadV]]:
    """Return the envelope class ``Event[payload_cls]``."""
    # Pydantic caches parametrisations too, but its lookup costs more than a decode.
    cls = _EVENT_CLASSES.get(payload_cls)
    if cls is None:
        cls = _EVENT_CLASSES[payload_cls] = Event[payload_cls]  # type: ignore[valid-type]
    return cast("type[Event[PayloadV]]", cls)


def new_event(
    data: PayloadV,
    *,
    source: str,
    key: str | None = None,
    correlation_id: UUID | None = None,
    causation_id: UUID | None = None,
    time: datetime | None = None,
) -> Event[PayloadV]:
    """Wrap ``data`` in a new envelope.

    ``type`` and ``schema_version`` come from the payload class; ``key`` defaults to the
    payload's key field (bot id, symbol, backup id); ``time`` defaults to now (UTC).
    Raises ``pydantic.ValidationError`` if a field is invalid (naive ``time``, a key that
    is not a NATS subject token…).
    """
    fields: dict[str, Any] = {
        "type": data.event_type,
        "schema_version": data.schema_version,
        "source": source,
        "key": data.default_key() if key is None else key,
        "correlation_id": correlation_id,
        "causation_id": causation_id,
        "data": data,
    }
    if time is not None:
        fields["time"] = time
    return event_class(type(data)).model_validate(fields)
