"""The compatibility gate: would the new contract break readers of the committed one?

Events stay in the streams for years and are replayed by new code, while running
consumers of the previous version read what new producers send. So, for an event type
whose ``schema_version`` did not change, a field of the previous version must not be
removed, retyped or constrained differently, and no field may become required. Adding
an optional field, making a field nullable or adding an enum value is additive. A
breaking change must bump ``schema_version`` and register an upcaster chain from the
previous version, which the document records in ``x-fleet-readable-versions``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from fleet_runtime.contract.schemas import Schema, inline_refs

FIX = (
    "restore the field as it was, or bump the payload class's schema_version and register "
    "an upcaster from the previous version in fleet_events.upcasting"
)

_ANNOTATIONS = frozenset({"title", "description", "examples", "default", "$comment"})
_NULL: Schema = {"type": "null"}


@dataclass(frozen=True)
class Incompatibility:
    """One change that breaks readers of ``event_type`` at ``schema_version``."""

    event_type: str
    schema_version: int
    field: str | None
    problem: str

    def __str__(self) -> str:
        where = f"{self.event_type} v{self.schema_version}"
        if self.field:
            where += f" field {self.field}"
        return f"{where}: {self.problem}"


@dataclass(frozen=True)
class _Message:
    version: int
    readable: tuple[int, ...]
    body: Schema


def _messages(doc: Mapping[str, Any]) -> dict[str, _Message]:
    components = doc.get("components") or {}
    schemas = components.get("schemas") or {}
    found: dict[str, _Message] = {}
    for message in (components.get("messages") or {}).values():
        event_type = message.get("x-fleet-event-type")
        if not isinstance(event_type, str):
            continue
        version = int(message["x-fleet-schema-version"])
        readable = tuple(int(v) for v in message.get("x-fleet-readable-versions", [version]))
        found[event_type] = _Message(version, readable, inline_refs(message["payload"], schemas))
    return found


def incompatibilities(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Incompatibility]:
    """Every change from document ``old`` to document ``new`` that breaks old readers."""
    before, after = _messages(old), _messages(new)
    found: list[Incompatibility] = []
    for event_type, was in sorted(before.items()):
        now = after.get(event_type)
        if now is None:
            found.append(
                Incompatibility(
                    event_type,
                    was.version,
                    None,
                    "the event type was removed; events already in the streams would no "
                    "longer decode",
                )
            )
        elif now.version < was.version:
            found.append(
                Incompatibility(
                    event_type,
                    was.version,
                    "schema_version",
                    f"went down from {was.version} to {now.version}",
                )
            )
        elif now.version > was.version:
            if was.version not in now.readable:
                found.append(
                    Incompatibility(
                        event_type,
                        was.version,
                        "schema_version",
                        f"bumped to {now.version} without an upcaster chain from "
                        f"{was.version}: stored v{was.version} events would no longer decode",
                    )
                )
        else:
            found.extend(
                Incompatibility(event_type, was.version, field, problem)
                for field, problem in _object_changes(was.body, now.body, "")
            )
    return found


def _object_changes(old: Schema, new: Schema, path: str) -> Iterator[tuple[str, str]]:
    old_fields: dict[str, Schema] = old.get("properties") or {}
    new_fields: dict[str, Schema] = new.get("properties") or {}
    old_required = set(old.get("required") or [])
    for name, was in old_fields.items():
        where = f"{path}.{name}" if path else name
        if name not in new_fields:
            yield where, "was removed (stored events and old producers still send it)"
        else:
            yield from _field_changes(was, new_fields[name], where)
    for name in new.get("required") or []:
        if name in old_required:
            continue
        where = f"{path}.{name}" if path else name
        if name in old_fields:
            yield where, "became required (stored events may lack it)"
        else:
            yield where, "is new and required (stored events lack it): make it optional"


def _field_changes(old: Schema, new: Schema, path: str) -> Iterator[tuple[str, str]]:
    if "properties" in old and "properties" in new:
        yield from _object_changes(old, new, path)
        return
    was, now = _shape(old), _shape(new)
    if was == now or _widened(was, now):
        return
    yield path, f"changed from {describe(was)} to {describe(now)}"


def _shape(node: Any) -> Any:
    """``node`` without the keys that only document (title, description, examples…)."""
    if isinstance(node, dict):
        return {k: _shape(v) for k, v in node.items() if k not in _ANNOTATIONS}
    if isinstance(node, list):
        return [_shape(item) for item in node]
    return node


def _widened(was: Any, now: Any) -> bool:
    """True when ``now`` accepts everything ``was`` did in one of the additive ways."""
    if not isinstance(was, dict) or not isinstance(now, dict):
        return False
    choices = now.get("anyOf")
    if isinstance(choices, list) and was in choices:
        # Made nullable: old values still validate, and absent means the same as before.
        return all(choice in (was, _NULL) for choice in choices) and len(now) == 1
    if "enum" in was and "enum" in now:
        rest_was = {k: v for k, v in was.items() if k != "enum"}
        rest_now = {k: v for k, v in now.items() if k != "enum"}
        return rest_was == rest_now and all(value in now["enum"] for value in was["enum"])
    return False


def describe(shape: Any, limit: int = 120) -> str:
    """A short reading of a schema: ``string (format date-time)``, ``integer``…"""
    text = _describe(shape)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _describe(shape: Any) -> str:
    if not isinstance(shape, dict) or not shape:
        return "any value"
    if "anyOf" in shape:
        return " or ".join(_describe(choice) for choice in shape["anyOf"])
    if "enum" in shape:
        return "one of " + ", ".join(str(value) for value in shape["enum"])
    if "const" in shape:
        return f"the constant {shape['const']}"
    kind = str(shape.get("type", "any value"))
    extras = [f"{key} {value}" for key, value in sorted(shape.items()) if key != "type"]
    return f"{kind} ({', '.join(extras)})" if extras else kind
