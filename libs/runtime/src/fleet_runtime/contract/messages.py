"""The channels and messages of the AsyncAPI document: one per event type, plus dead letters."""

from __future__ import annotations

import inspect
from enum import Enum
from typing import Any

from fleet_events import DLQ_STREAM, Payload, UpcasterRegistry, subject_pattern
from fleet_runtime import deadletter
from fleet_runtime.contract.schemas import COMPONENTS_PREFIX, envelope_schema_name

DEAD_LETTER_CHANNEL = "deadLetter"
DEAD_LETTER_MESSAGE = "DeadLetter"
EVENT_HEADERS = "EventHeaders"
DEAD_LETTER_HEADERS = "DeadLetterHeaders"

Doc = dict[str, Any]


def channel_id(event_type: str) -> str:
    """The channel key of an event type: ``trade.executed`` -> ``tradeExecuted``."""
    first, *rest = event_type.split(".")
    return first + "".join(word[:1].upper() + word[1:] for word in rest)


def _parameter(payload: type[Payload], field_name: str) -> Doc:
    parameter: Doc = {
        "description": f"The value of `data.{field_name}` (one NATS subject token).",
        "location": f"$message.payload#/data/{field_name}",
    }
    annotation = payload.model_fields[field_name].annotation
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        parameter["enum"] = [str(member.value) for member in annotation]
    return parameter


def event_channel(payload: type[Payload], stream: str) -> Doc:
    """The channel of one event type: its subject with the entity fields as parameters."""
    return {
        "address": subject_pattern(payload),
        "title": payload.event_type,
        "description": inspect.cleandoc(payload.__doc__ or payload.event_type),
        "parameters": {name: _parameter(payload, name) for name in payload.subject_fields},
        "messages": {payload.__name__: {"$ref": f"#/components/messages/{payload.__name__}"}},
        "x-fleet-stream": stream,
    }


def event_message(payload: type[Payload], upcasters: UpcasterRegistry) -> Doc:
    """The message of one event type at its current schema version."""
    doc = inspect.cleandoc(payload.__doc__ or payload.event_type)
    return {
        "name": payload.event_type,
        "title": f"{payload.event_type} (schema_version {payload.schema_version})",
        "summary": doc.splitlines()[0],
        "contentType": "application/json",
        "headers": {"$ref": COMPONENTS_PREFIX + EVENT_HEADERS},
        "payload": {"$ref": COMPONENTS_PREFIX + envelope_schema_name(payload)},
        "correlationId": {"$ref": "#/components/correlationIds/correlationId"},
        "x-fleet-event-type": payload.event_type,
        "x-fleet-schema-version": payload.schema_version,
        "x-fleet-readable-versions": list(
            upcasters.readable_versions(payload.event_type, payload.schema_version)
        ),
        "x-fleet-subject-fields": list(payload.subject_fields),
        "x-fleet-key-field": payload.key_field,
    }


def event_headers() -> Doc:
    """The headers of every event message."""
    return {
        "type": "object",
        "required": ["Nats-Msg-Id"],
        "properties": {
            "Nats-Msg-Id": {
                "type": "string",
                "format": "uuid",
                "description": "The envelope `id`. The stream drops a second message with "
                "the same id inside its duplicate window: retry a publish with the same id.",
            }
        },
    }


_DEAD_LETTER_HEADER_TEXT = {
    deadletter.H_MSG_ID: "`dlq:<worker>:<stream>:<seq>`: one dead letter per failed message.",
    deadletter.H_WORKER: "The worker that gave up on the message.",
    deadletter.H_STREAM: "Stream of the original message.",
    deadletter.H_SEQ: "Sequence of the original message in that stream.",
    deadletter.H_SUBJECT: "Subject of the original message.",
    deadletter.H_ERROR_CLASS: "Class of the failure (MalformedEvent, InvalidEvent, "
    "UnknownEventType, EventRejected, DeliveriesExhausted or the handler's exception).",
    deadletter.H_ERROR: "The failure, one line.",
    deadletter.H_DELIVERIES: "Deliveries of the original message before it was given up.",
    deadletter.H_TIME: "When it was dead-lettered (ISO-8601).",
    deadletter.H_EVENT_ID: "The envelope id of the original, when it decoded that far.",
}


def dead_letter_headers() -> Doc:
    """The headers the runtime writes on a dead letter."""
    properties = {
        name: {"type": "string", "description": text}
        for name, text in sorted(_DEAD_LETTER_HEADER_TEXT.items())
    }
    optional = {deadletter.H_EVENT_ID}
    return {
        "type": "object",
        "required": sorted(name for name in properties if name not in optional),
        "properties": properties,
    }


def dead_letter_channel() -> Doc:
    """The channel every worker sends its dead letters to."""
    return {
        "address": "dlq.{worker}.{subject}",
        "title": "dead letters",
        "description": "Messages a worker gave up on: the original body, byte for byte, "
        "with why and where it failed in headers. `fleet dlq redrive` publishes the "
        "original again on its subject.",
        "parameters": {
            "worker": {"description": "The worker that gave up on the message."},
            "subject": {
                "description": "The original subject (several tokens).",
                "location": f"$message.header#/{deadletter.H_SUBJECT}",
            },
        },
        "messages": {DEAD_LETTER_MESSAGE: {"$ref": f"#/components/messages/{DEAD_LETTER_MESSAGE}"}},
        "x-fleet-stream": DLQ_STREAM,
    }


def dead_letter_message() -> Doc:
    """A dead letter: the original body, the reasons in headers."""
    return {
        "name": "dead-letter",
        "title": "Dead letter",
        "summary": "An original message a worker could not apply, with the reason.",
        "contentType": "application/octet-stream",
        "headers": {"$ref": COMPONENTS_PREFIX + DEAD_LETTER_HEADERS},
        "payload": {
            "description": "The original message body as the producer sent it (it may not "
            "be valid JSON: that can be why it is here)."
        },
    }
