"""The registry of event types and their JSON Schemas."""

from __future__ import annotations

from fleet_events import EVENT_TYPES, TradeExecuted, event_json_schemas


def test_registry_lists_every_family() -> None:
    assert sorted(EVENT_TYPES) == [
        "bot.created",
        "bot.deleted",
        "bot.deployed",
        "bot.started",
        "bot.stopped",
        "bot.updated",
        "market.candle",
        "market.tick",
        "ops.backup.completed",
        "ops.backup.failed",
        "ops.backup.requested",
        "trade.completed",
        "trade.executed",
        "trade.failed",
    ]
    assert all(cls.event_type == name for name, cls in EVENT_TYPES.items())


def test_json_schemas_describe_each_envelope() -> None:
    schemas = event_json_schemas()

    assert set(schemas) == set(EVENT_TYPES)
    trade = schemas["trade.executed"]
    assert trade["title"] == "TradeExecutedEvent"
    assert trade["properties"]["type"]["const"] == "trade.executed"
    assert trade["properties"]["schema_version"]["const"] == TradeExecuted.schema_version
    payload = trade["$defs"]["TradeExecuted"]
    assert payload["additionalProperties"] is False
    # Decimals are strings on the wire; the schema must not advertise numbers.
    assert payload["properties"]["price"]["type"] == "string"
    executed_at = payload["properties"]["executed_at"]
    assert (executed_at["type"], executed_at["format"]) == ("string", "date-time")
    assert "price" in payload["required"]
