"""Encode events to JSON bytes and decode bytes back to typed events."""

from __future__ import annotations

import json
from functools import cache
from typing import Annotated, Any, TypeVar

from pydantic import GetPydanticSchema, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails, core_schema, from_json

from .envelope import Event, event_class
from .errors import InvalidEvent, MalformedEvent, UnexpectedEventType, UnknownEventType
from .payload import Payload
from .registry import EVENT_TYPES
from .upcasting import UPCASTERS, UpcasterRegistry

P = TypeVar("P", bound=Payload)


def encode(event: Event[Any]) -> bytes:
    """Return ``event`` as compact UTF-8 JSON (decimals as strings, times as UTC ISO-8601)."""
    return event.__pydantic_serializer__.to_json(event)


@cache
def _any_event() -> TypeAdapter[Event[Any]]:
    """Validator of every current event in one JSON pass, dispatching on ``type``."""

    def schema(_source: Any, handler: Any) -> core_schema.CoreSchema:
        return core_schema.tagged_union_schema(
            {name: handler.generate_schema(event_class(cls)) for name, cls in EVENT_TYPES.items()},
            discriminator="type",
        )

    return TypeAdapter(Annotated[Any, GetPydanticSchema(schema)])


def decode(raw: bytes | str, *, upcasters: UpcasterRegistry = UPCASTERS) -> Event[Any]:
    """Return the event in ``raw`` with its typed payload class chosen by ``type``.

    Events of an older ``schema_version`` are upcast to the current one. Raises a
    ``DecodeError`` subclass: ``MalformedEvent``, ``InvalidEvent``, ``UnknownEventType``
    or ``UnknownSchemaVersion``.
    """
    try:
        # Hot path: a current, valid event is parsed and validated in one pass by a
        # tagged union keyed on "type"; everything else takes the diagnosing path.
        event: Event[Any] = _any_event().validate_json(raw)
    except ValidationError:
        return _decode_slow(raw, upcasters)
    return event


def decode_as(
    raw: bytes | str, payload_cls: type[P], *, upcasters: UpcasterRegistry = UPCASTERS
) -> Event[P]:
    """Like ``decode``, but only for events of ``payload_cls``.

    Raises ``UnexpectedEventType`` for a valid event of another type.
    """
    try:
        return event_class(payload_cls).model_validate_json(raw)
    except ValidationError:
        pass
    event = _decode_slow(raw, upcasters)
    if not isinstance(event.data, payload_cls):
        raise UnexpectedEventType(event.type, (payload_cls.event_type,))
    return event


def _decode_slow(raw: bytes | str, upcasters: UpcasterRegistry) -> Event[Any]:
    """Decode step by step so that a failure names its cause; upcast old versions."""
    try:
        obj = from_json(raw)
    except ValueError as exc:
        raise MalformedEvent(f"not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise MalformedEvent(f"expected a JSON object, got {_json_kind(obj)}")

    event_type = obj.get("type")
    if not isinstance(event_type, str):
        reason = "Field required" if event_type is None else "must be a string"
        raise InvalidEvent(reason, field="type")
    payload_cls = EVENT_TYPES.get(event_type)
    if payload_cls is None:
        raise UnknownEventType(event_type)

    version = obj.get("schema_version")
    if type(version) is not int or version < 1:
        raise InvalidEvent(
            f"must be an integer >= 1 (got {version!r})"
            if "schema_version" in obj
            else "Field required",
            field="schema_version",
        )
    target: bytes | str = raw
    current = payload_cls.schema_version
    if version != current:
        data = obj.get("data")
        if not isinstance(data, dict):
            raise InvalidEvent("must be a JSON object", field="data")
        upcast = upcasters.upcast(event_type, data, version, current)
        target = json.dumps({**obj, "schema_version": current, "data": upcast})

    try:
        return event_class(payload_cls).model_validate_json(target)
    except ValidationError as exc:
        raise _invalid(exc) from None


def _invalid(exc: ValidationError) -> InvalidEvent:
    errors = exc.errors(include_url=False)
    first = errors[0]
    field = ".".join(str(part) for part in first["loc"]) or None
    return InvalidEvent(_reason(first), field=field, errors=errors)


def _reason(error: ErrorDetails) -> str:
    message = error["msg"]
    ctx = error.get("ctx") or {}
    if error["type"] == "value_error" and "error" in ctx:
        # Our own validators raise ValueError; drop pydantic's "Value error, " prefix.
        message = str(ctx["error"])
    value = error.get("input")
    if error["type"] != "missing" and not isinstance(value, dict | list):
        message += f" (got {value!r:.80})"
    return message


def _json_kind(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "null"
