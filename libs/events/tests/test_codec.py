"""Encode/decode round trips and the typed errors of bad input."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from fleet_events import (
    EVENT_TYPES,
    BotCreated,
    BotUpdated,
    DecodeError,
    Event,
    InvalidEvent,
    MalformedEvent,
    Payload,
    TradeExecuted,
    UnexpectedEventType,
    UnknownEventType,
    UnknownSchemaVersion,
    decode,
    decode_as,
    encode,
    new_event,
)

DECIMAL_REASON = 'must be a decimal string, e.g. "101.25", not a JSON number'
_DELETE = object()


def trade_event(make_trade: Callable[..., TradeExecuted]) -> Event[TradeExecuted]:
    return new_event(make_trade(), source="trade-sim")


def mutate(event: Event[Any], path: str, value: object) -> bytes:
    """Return ``event`` encoded with the field at dotted ``path`` set (or deleted)."""
    obj = json.loads(encode(event))
    *parents, last = path.split(".")
    target = obj
    for part in parents:
        target = target[part]
    if value is _DELETE:
        del target[last]
    else:
        target[last] = value
    return json.dumps(obj).encode()


def decode_error(raw: bytes) -> DecodeError:
    with pytest.raises(DecodeError) as info:
        decode(raw)
    return info.value


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_every_event_type_round_trips(event_type: str, samples: dict[str, Payload]) -> None:
    event = new_event(samples[event_type], source="test")

    decoded = decode(encode(event))

    assert decoded == event
    assert type(decoded.data) is EVENT_TYPES[event_type]
    assert encode(decoded) == encode(event)


def test_decimals_survive_exactly(make_trade: Callable[..., TradeExecuted]) -> None:
    event = trade_event(make_trade)

    decoded = decode_as(encode(event), TradeExecuted)

    assert decoded.data.quantity == Decimal("0.3")
    assert str(decoded.data.quantity) == "0.3"
    assert str(decoded.data.price) == "64000.12345678"
    assert b'"quantity":"0.3"' in encode(event)


def test_encoding_is_compact_json_with_utc_times(make_trade: Callable[..., TradeExecuted]) -> None:
    raw = encode(trade_event(make_trade))

    assert b" " not in raw
    assert b'"executed_at":"2024-05-01T12:00:00Z"' in raw


def test_non_utc_offsets_are_normalised_to_utc(make_trade: Callable[..., TradeExecuted]) -> None:
    raw = mutate(trade_event(make_trade), "data.executed_at", "2024-05-01T14:00:00+02:00")

    event = decode(raw)

    assert event.data.executed_at.utcoffset().total_seconds() == 0
    assert b'"executed_at":"2024-05-01T12:00:00Z"' in encode(event)


@pytest.mark.parametrize(
    ("path", "value", "field", "reason"),
    [
        ("data.price", 101.25, "data.price", DECIMAL_REASON),
        ("data.price", 101, "data.price", DECIMAL_REASON),
        ("data.price", "NaN", "data.price", "Input should be a finite number"),
        ("data.fee", "-Infinity", "data.fee", "Input should be a finite number"),
        ("data.price", "0", "data.price", "Input should be greater than 0"),
        ("data.price", "cheap", "data.price", "Input should be a valid decimal"),
        ("data.side", "HOLD", "data.side", "Input should be 'BUY' or 'SELL'"),
        ("data.fee_currency", 5, "data.fee_currency", "Input should be a valid string"),
        ("data.fee", _DELETE, "data.fee", "Field required"),
        ("data.trade_id", _DELETE, "data.trade_id", "Field required"),
        ("data.executed_at", "2024-05-01T12:00:00", "data.executed_at", "timezone-aware"),
        ("time", "2024-05-01T12:00:00", "time", "naive datetimes are rejected"),
        ("data.leverage", "10", "data.leverage", "Extra inputs are not permitted"),
        ("extra", 1, "extra", "Extra inputs are not permitted"),
        ("data.symbol", "BTC.USDT", "data.symbol", "must be a NATS subject token"),
        ("data.bot_id", "bot 1", "data.bot_id", "must be a NATS subject token"),
        ("key", "a>b", "key", "must be a NATS subject token"),
        ("id", "not-a-uuid", "id", "Input should be a valid UUID"),
        ("source", "", "source", "at least 1 character"),
    ],
)
def test_invalid_field_is_named_with_its_reason(
    make_trade: Callable[..., TradeExecuted], path: str, value: object, field: str, reason: str
) -> None:
    error = decode_error(mutate(trade_event(make_trade), path, value))

    assert isinstance(error, InvalidEvent)
    assert error.field == field
    assert reason in error.reason
    assert str(error).startswith(f"{field}: ")
    assert reason in str(error)


def test_float_error_shows_the_offending_value(make_trade: Callable[..., TradeExecuted]) -> None:
    error = decode_error(mutate(trade_event(make_trade), "data.quantity", 0.3))

    assert str(error) == f"data.quantity: {DECIMAL_REASON} (got 0.3)"


def test_bare_nan_literal_is_rejected(make_trade: Callable[..., TradeExecuted]) -> None:
    raw = encode(trade_event(make_trade)).replace(b'"quantity":"0.3"', b'"quantity":NaN')

    error = decode_error(raw)

    assert isinstance(error, InvalidEvent)
    assert error.field == "data.quantity"
    assert DECIMAL_REASON in error.reason


def test_all_errors_are_kept(make_trade: Callable[..., TradeExecuted]) -> None:
    event = trade_event(make_trade)
    obj = json.loads(encode(event))
    obj["data"]["price"] = 1.5
    obj["data"]["fee"] = 0.1
    del obj["data"]["side"]

    error = decode_error(json.dumps(obj).encode())

    assert isinstance(error, InvalidEvent)
    assert sorted(".".join(map(str, e["loc"])) for e in error.errors) == [
        "data.fee",
        "data.price",
        "data.side",
    ]
    assert str(error).endswith("(and 2 more errors)")


def test_cross_field_rule_names_the_payload(samples: dict[str, Payload]) -> None:
    event = new_event(samples["bot.updated"], source="test")
    raw = mutate(event, "data", {"bot_id": "b-1", "version": 2})

    error = decode_error(raw)

    assert isinstance(error, InvalidEvent)
    assert error.field == "data"
    assert error.reason == "bot.updated must change at least one field"


def test_unknown_type(make_trade: Callable[..., TradeExecuted]) -> None:
    error = decode_error(mutate(trade_event(make_trade), "type", "trade.teleported"))

    assert isinstance(error, UnknownEventType)
    assert error.field == "type"
    assert error.event_type == "trade.teleported"
    assert str(error) == "type: unknown event type 'trade.teleported'"


def test_missing_type(make_trade: Callable[..., TradeExecuted]) -> None:
    error = decode_error(mutate(trade_event(make_trade), "type", _DELETE))

    assert isinstance(error, InvalidEvent)
    assert str(error) == "type: Field required"


def test_newer_schema_version(make_trade: Callable[..., TradeExecuted]) -> None:
    error = decode_error(mutate(trade_event(make_trade), "schema_version", 3))

    assert isinstance(error, UnknownSchemaVersion)
    assert error.field == "schema_version"
    assert (error.event_type, error.version, error.current) == ("trade.executed", 3, 2)
    assert "schema_version: schema_version 3 of 'trade.executed' is newer" in str(error)


@pytest.mark.parametrize("version", [0, -1, "2", 1.5, None])
def test_schema_version_must_be_a_positive_int(
    make_trade: Callable[..., TradeExecuted], version: object
) -> None:
    error = decode_error(mutate(trade_event(make_trade), "schema_version", version))

    assert isinstance(error, InvalidEvent)
    assert error.field == "schema_version"
    assert f"must be an integer >= 1 (got {version!r})" == error.reason


def test_not_json() -> None:
    error = decode_error(b'{"type": "trade.executed",')

    assert isinstance(error, MalformedEvent)
    assert error.field is None
    assert str(error).startswith("not valid JSON: ")


@pytest.mark.parametrize(
    ("raw", "kind"),
    [(b"[1, 2]", "an array"), (b'"event"', "a string"), (b"3", "a number"), (b"null", "null")],
)
def test_json_that_is_not_an_object(raw: bytes, kind: str) -> None:
    error = decode_error(raw)

    assert isinstance(error, MalformedEvent)
    assert str(error) == f"expected a JSON object, got {kind}"


def test_type_and_payload_must_agree(samples: dict[str, Payload]) -> None:
    # A bot.created body under a bot.deleted type: the data does not fit the class.
    event = new_event(samples["bot.created"], source="test")

    error = decode_error(mutate(event, "type", "bot.deleted"))

    assert isinstance(error, InvalidEvent)
    assert str(error) == (
        "data.user_id: Extra inputs are not permitted (got 'u-42') (and 8 more errors)"
    )


def test_decode_as_accepts_its_type(make_trade: Callable[..., TradeExecuted]) -> None:
    event = trade_event(make_trade)

    decoded = decode_as(encode(event), TradeExecuted)

    assert decoded == event
    assert decoded.data.fee_currency == "BNB"


def test_decode_as_rejects_another_type(samples: dict[str, Payload]) -> None:
    raw = encode(new_event(samples["bot.created"], source="test"))

    with pytest.raises(UnexpectedEventType) as info:
        decode_as(raw, TradeExecuted)

    assert info.value.field == "type"
    assert str(info.value) == (
        "type: event type 'bot.created' is not accepted here (expected 'trade.executed')"
    )


def test_decode_as_reports_invalid_fields(make_trade: Callable[..., TradeExecuted]) -> None:
    raw = mutate(trade_event(make_trade), "data.price", 1.25)

    with pytest.raises(InvalidEvent) as info:
        decode_as(raw, TradeExecuted)

    assert info.value.field == "data.price"
    assert info.value.reason.startswith(DECIMAL_REASON)


def test_bot_created_keeps_its_bot_kind_field(samples: dict[str, Payload]) -> None:
    # The payload's own "type" (bot kind) must not be confused with the envelope type.
    event = decode(encode(new_event(samples["bot.created"], source="test")))

    assert event.type == "bot.created"
    assert isinstance(event.data, BotCreated)
    assert event.data.type == "scheduled"
    assert event.data.max_position_size == Decimal("1000.50")


def test_bot_updated_lists_changed_fields(samples: dict[str, Payload]) -> None:
    update = samples["bot.updated"]
    assert isinstance(update, BotUpdated)

    assert update.changed_fields() == {"name": "mean reversion v2", "tags": ["btc"]}
