"""Registry of every event type and the JSON Schemas of their envelopes."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from .bots import BotCreated, BotDeleted, BotDeployed, BotStarted, BotStopped, BotUpdated
from .envelope import event_class
from .market import MarketCandle, MarketTick
from .ops import BackupCompleted, BackupFailed, BackupRequested
from .payload import Payload
from .trades import TradeCompleted, TradeExecuted, TradeFailed

_PAYLOADS: tuple[type[Payload], ...] = (
    BotCreated,
    BotUpdated,
    BotDeployed,
    BotStarted,
    BotStopped,
    BotDeleted,
    TradeExecuted,
    TradeCompleted,
    TradeFailed,
    MarketTick,
    MarketCandle,
    BackupRequested,
    BackupCompleted,
    BackupFailed,
)

EVENT_TYPES: Mapping[str, type[Payload]] = MappingProxyType(
    {payload.event_type: payload for payload in _PAYLOADS}
)
"""Event ``type`` -> payload class, for every event of the fleet."""

if len(EVENT_TYPES) != len(_PAYLOADS):
    raise RuntimeError("two payload classes declare the same event_type")


def event_json_schemas(
    event_types: Mapping[str, type[Payload]] = EVENT_TYPES,
) -> dict[str, dict[str, Any]]:
    """Return the JSON Schema of the full envelope of each event type, keyed by type.

    ``type`` and ``schema_version`` are pinned with ``const`` so that each schema
    describes exactly one message kind (as an AsyncAPI message needs). ``event_types``
    defaults to the fleet's registry.
    """
    schemas: dict[str, dict[str, Any]] = {}
    for event_type, payload in event_types.items():
        schema = event_class(payload).model_json_schema()
        schema["title"] = f"{payload.__name__}Event"
        properties = schema["properties"]
        properties["type"] = {"const": event_type, "type": "string", "title": "Type"}
        properties["schema_version"] = {
            "const": payload.schema_version,
            "type": "integer",
            "title": "Schema Version",
        }
        schemas[event_type] = schema
    return schemas
