"""Upcasters: old events in a stream still decode as the current payload."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from fleet_events import (
    UPCASTERS,
    InvalidEvent,
    Side,
    TradeExecuted,
    UnknownSchemaVersion,
    UpcasterRegistry,
    decode,
    decode_as,
    encode,
    new_event,
)


def as_v1(event_raw: bytes) -> bytes:
    """Rewrite an encoded v2 trade.executed as its v1 producer wrote it."""
    obj = json.loads(event_raw)
    data = obj["data"]
    data["timestamp"] = data.pop("executed_at")
    data["side"] = data["side"].lower()
    obj["schema_version"] = 1
    return json.dumps(obj).encode()


def test_v1_trade_executed_decodes_as_v2(make_trade: Callable[..., TradeExecuted]) -> None:
    event = new_event(make_trade(side=Side.SELL), source="trade-sim")
    raw_v1 = as_v1(encode(event))

    decoded = decode(raw_v1)

    assert decoded == event
    assert decoded.schema_version == 2
    assert isinstance(decoded.data, TradeExecuted)
    assert decoded.data.side is Side.SELL
    assert decoded.data.executed_at == event.data.executed_at
    assert decode_as(raw_v1, TradeExecuted) == event


def test_upcaster_does_not_mutate_its_input() -> None:
    data: dict[str, Any] = {"timestamp": "2024-01-01T00:00:00Z", "side": "buy"}

    out = UPCASTERS.upcast("trade.executed", data, 1, 2)

    assert out == {"executed_at": "2024-01-01T00:00:00Z", "side": "BUY"}
    assert data == {"timestamp": "2024-01-01T00:00:00Z", "side": "buy"}


def test_chain_applies_every_step_in_order() -> None:
    registry = UpcasterRegistry()
    seen: list[int] = []

    @registry.register("thing.happened", from_version=1)
    def v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
        seen.append(1)
        return {**data, "b": data["a"] * 2}

    @registry.register("thing.happened", from_version=2)
    def v2_to_v3(data: dict[str, Any]) -> dict[str, Any]:
        seen.append(2)
        return {"c": data["b"] + 1}

    assert registry.upcast("thing.happened", {"a": 5}, 1, 3) == {"c": 11}
    assert seen == [1, 2]
    assert registry.upcast("thing.happened", {"b": 1}, 2, 3) == {"c": 2}
    assert registry.upcast("thing.happened", {"c": 0}, 3, 3) == {"c": 0}


def test_missing_step_is_an_unknown_schema_version() -> None:
    registry = UpcasterRegistry()
    registry.add("thing.happened", 2, lambda data: data)

    with pytest.raises(UnknownSchemaVersion) as info:
        registry.upcast("thing.happened", {}, 1, 3)

    assert info.value.field == "schema_version"
    assert str(info.value) == (
        "schema_version: no upcaster from schema_version 1 to 2 of 'thing.happened' (current is 3)"
    )


def test_old_version_without_path_fails_decode(make_trade: Callable[..., TradeExecuted]) -> None:
    raw_v1 = as_v1(encode(new_event(make_trade(), source="trade-sim")))

    with pytest.raises(UnknownSchemaVersion) as info:
        decode(raw_v1, upcasters=UpcasterRegistry())

    assert (info.value.event_type, info.value.version, info.value.current) == (
        "trade.executed",
        1,
        2,
    )
    assert "no upcaster from schema_version 1 to 2 of 'trade.executed'" in str(info.value)


def test_upcast_result_is_validated(make_trade: Callable[..., TradeExecuted]) -> None:
    obj = json.loads(as_v1(encode(new_event(make_trade(), source="trade-sim"))))
    obj["data"]["price"] = 12.5
    error_raw = json.dumps(obj).encode()

    with pytest.raises(InvalidEvent) as info:
        decode(error_raw)

    assert info.value.field == "data.price"
    assert info.value.reason.startswith("must be a decimal string")


def test_duplicate_registration_is_refused() -> None:
    registry = UPCASTERS.copy()

    with pytest.raises(ValueError, match="already exists"):
        registry.add("trade.executed", 1, lambda data: data)


def test_readable_versions_follow_the_unbroken_chain() -> None:
    registry = UpcasterRegistry()
    registry.add("thing.happened", 2, lambda data: data)
    registry.add("thing.happened", 3, lambda data: data)

    assert registry.readable_versions("thing.happened", 4) == (2, 3, 4)
    assert registry.readable_versions("thing.happened", 1) == (1,)
    assert registry.readable_versions("other.thing", 3) == (3,)
    assert UPCASTERS.readable_versions("trade.executed", 2) == (1, 2)
