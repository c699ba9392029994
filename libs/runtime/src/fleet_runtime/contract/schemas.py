"""The registry's JSON Schemas as AsyncAPI components, and the reverse: a schema with refs inlined.

Pydantic writes each envelope schema with its own ``$defs``; an AsyncAPI document keeps
every named schema once under ``components.schemas``. Keys are put in a fixed order so
that the rendered document only changes when the contract does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fleet_events import Payload, event_json_schemas

Schema = dict[str, Any]

COMPONENTS_PREFIX = "#/components/schemas/"
_DEFS_PREFIX = "#/$defs/"

ENVELOPE_REQUIRED_OF_PUBLISHERS = ("id", "time")
"""Envelope fields the decoder would fill in but a publisher must send.

A consumer that received an event without ``id`` would give each delivery a new id, so
its idempotent writes and the stream's ``Nats-Msg-Id`` deduplication would not hold.
"""


class SchemaConflict(ValueError):
    """Two event schemas define the same component name differently."""


def envelope_schema_name(payload_cls: type[Payload]) -> str:
    """Component name of the whole message body of ``payload_cls`` (``TradeExecutedEvent``)."""
    return f"{payload_cls.__name__}Event"


def component_schemas(event_types: Mapping[str, type[Payload]]) -> dict[str, Schema]:
    """Return every named schema of ``event_types``: envelopes, payloads and enums, by name.

    Names are sorted; refs point into ``#/components/schemas/``.
    """
    found: dict[str, Schema] = {}
    for event_type, schema in event_json_schemas(event_types).items():
        payload_cls = event_types[event_type]
        defs = schema.pop("$defs", {})
        envelope = _relink(schema)
        envelope["required"] = _publisher_required(envelope)
        named = {envelope_schema_name(payload_cls): envelope}
        named.update({name: _relink(definition) for name, definition in defs.items()})
        for name, definition in named.items():
            ordered = ordered_schema(definition)
            if name in found and found[name] != ordered:
                raise SchemaConflict(
                    f"schema {name!r} of event {event_type!r} differs from another schema "
                    "of the same name: rename one of the two classes"
                )
            found[name] = ordered
    return dict(sorted(found.items()))


def _publisher_required(envelope: Schema) -> list[str]:
    required = list(envelope.get("required", []))
    order = list(envelope["properties"])
    extra = [name for name in ENVELOPE_REQUIRED_OF_PUBLISHERS if name not in required]
    return sorted([*required, *extra], key=order.index)


def _relink(node: Any) -> Any:
    """Copy ``node`` with ``#/$defs/X`` refs turned into ``#/components/schemas/X``."""
    if isinstance(node, dict):
        copy = {key: _relink(value) for key, value in node.items()}
        ref = copy.get("$ref")
        if isinstance(ref, str) and ref.startswith(_DEFS_PREFIX):
            copy["$ref"] = COMPONENTS_PREFIX + ref.removeprefix(_DEFS_PREFIX)
        return copy
    if isinstance(node, list):
        return [_relink(item) for item in node]
    return node


def ordered_schema(node: Any, *, keep_order: bool = False) -> Any:
    """Copy ``node`` with every mapping's keys sorted, except the field order of ``properties``."""
    if isinstance(node, dict):
        keys = list(node) if keep_order else sorted(node)
        return {key: ordered_schema(node[key], keep_order=key == "properties") for key in keys}
    if isinstance(node, list):
        return [ordered_schema(item) for item in node]
    return node


def inline_refs(
    node: Any, components: Mapping[str, Schema], *, _seen: frozenset[str] = frozenset()
) -> Any:
    """Copy ``node`` with each ``#/components/schemas/X`` ref replaced by the schema X.

    A ref to a schema that is already being inlined (a recursive type) is left as it is.
    Keys next to a ``$ref`` are kept and win over the referenced schema's.
    """
    if isinstance(node, list):
        return [inline_refs(item, components, _seen=_seen) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith(COMPONENTS_PREFIX):
        name = ref.removeprefix(COMPONENTS_PREFIX)
        if name in components and name not in _seen:
            target = inline_refs(components[name], components, _seen=_seen | {name})
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            return {**target, **inline_refs(siblings, components, _seen=_seen)}
    return {key: inline_refs(value, components, _seen=_seen) for key, value in node.items()}
