"""Turn what a person types into a valid event: a type or subject, and the data as JSON.

Validation is the consumers' own decoder (``fleet_events.decode``), so an event this
accepts is one every worker accepts, and a refusal names the field the same way a dead
letter would.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

from fleet_events import (
    EVENT_TYPES,
    DecodeError,
    Event,
    Payload,
    check_subject_token,
    decode,
    subject_filter,
    subject_for,
)
from fleet_runtime.errors import UserError
from fleet_runtime.topology.subjects import covers

DEFAULT_SOURCE = "fleet-cli"


@dataclass(frozen=True)
class Target:
    """The event type to publish and, when a subject was given, that subject."""

    payload_cls: type[Payload]
    subject: str | None


def resolve_target(text: str, event_types: Mapping[str, type[Payload]] = EVENT_TYPES) -> Target:
    """The event type ``text`` names, either directly or as a concrete subject of it."""
    if text in event_types:
        return Target(event_types[text], None)
    if "*" in text.split(".") or ">" in text.split("."):
        raise UserError(
            f"{text!r} is a wildcard subject; an event is published on one concrete subject",
            fix="give the event type (trade.executed) or a full subject (trade.executed.bot-1)",
        )
    for payload_cls in event_types.values():
        if covers(subject_filter(payload_cls), text):
            return Target(payload_cls, text)
    raise UserError(
        f"type: unknown event type or subject {text!r}",
        fix=f"use one of {', '.join(sorted(event_types))} (or its subject with the entity ids)",
    )


def load_data(value: str) -> dict[str, Any]:
    """The JSON object of ``--data``: inline JSON, ``@path`` of a file, or ``@-`` for stdin."""
    if value.startswith("@"):
        name = value[1:]
        try:
            text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
        except OSError as exc:
            raise UserError(
                f"--data: cannot read {name}: {exc.strerror or exc}",
                fix="give an existing file after @, or the JSON itself",
            ) from None
    else:
        text = value
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(
            f"--data: not valid JSON: {exc}",
            fix="""quote the JSON for the shell: --data '{"symbol": "BTCUSDT", ...}'""",
        ) from None
    if not isinstance(data, dict):
        raise UserError(
            "--data: must be a JSON object (the event's data fields)",
            fix="""pass the payload fields, e.g. --data '{"symbol": "BTCUSDT", ...}'""",
        )
    return data


def build_event(
    target: Target,
    data: Mapping[str, Any],
    *,
    source: str = DEFAULT_SOURCE,
    key: str | None = None,
    event_id: str | None = None,
) -> Event[Any]:
    """A validated event of ``target``'s type carrying ``data``.

    Entity fields missing from ``data`` are taken from the subject when one was given;
    the id and time are new unless ``event_id`` is given. Raises ``UserError`` naming the
    first bad field.
    """
    payload_cls = target.payload_cls
    fields = dict(data)
    if target.subject is not None:
        tokens = target.subject.split(".")[-len(payload_cls.subject_fields) :]
        for name, token in zip(payload_cls.subject_fields, tokens, strict=True):
            fields.setdefault(name, token)
    envelope: dict[str, Any] = {
        "type": payload_cls.event_type,
        "schema_version": payload_cls.schema_version,
        "source": source,
        "key": key if key is not None else _default_key(payload_cls, fields),
        "data": fields,
    }
    if event_id is not None:
        envelope["id"] = event_id
    try:
        event = decode(json.dumps(envelope))
    except DecodeError as exc:
        raise UserError(
            f"invalid {payload_cls.event_type} event: {exc}",
            fix=f"correct {exc.field or 'the data'} (the contract: docs/asyncapi.yaml, "
            f"message {payload_cls.__name__})",
        ) from None
    if target.subject is not None and subject_for(event) != target.subject:
        raise UserError(
            f"subject {target.subject} does not match the event, whose subject is "
            f"{subject_for(event)} (from data.{', data.'.join(payload_cls.subject_fields)})",
            fix=f"publish to {subject_for(event)}, or give the event type alone",
        )
    return event


def _default_key(payload_cls: type[Payload], fields: Mapping[str, Any]) -> str:
    value = fields.get(payload_cls.key_field)
    try:
        return check_subject_token(value) if isinstance(value, str) else "-"
    except ValueError:
        # The same value is validated as a data field, and that error names the field the
        # person typed; a placeholder key keeps an envelope error from hiding it.
        return "-"


def parse_event_id(value: str | None) -> str | None:
    """``--id`` as a canonical UUID string, or a clear error."""
    if value is None:
        return None
    try:
        return str(UUID(value))
    except ValueError:
        raise UserError(
            f"--id: {value!r} is not a UUID",
            fix="pass the id of the event to publish again, e.g. the one printed by a "
            "previous `fleet publish`",
        ) from None
