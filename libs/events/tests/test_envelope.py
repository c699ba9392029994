"""Building envelopes and payloads in Python: defaults and construction errors."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from uuid import UUID, uuid4

import pytest
from pydantic import ValidationError

from fleet_events import (
    CandleInterval,
    Event,
    MarketCandle,
    MarketTick,
    Payload,
    TradeExecuted,
    event_class,
    new_event,
)


def only_error(exc: pytest.ExceptionInfo[ValidationError]) -> tuple[str, str]:
    errors = exc.value.errors()
    assert len(errors) == 1, errors
    return ".".join(map(str, errors[0]["loc"])), errors[0]["msg"]


def test_new_event_derives_envelope_fields(make_trade: Callable[..., TradeExecuted]) -> None:
    trade = make_trade()
    before = datetime.now(UTC)

    event = new_event(trade, source="trade-sim")

    assert isinstance(event, Event)
    assert type(event) is event_class(TradeExecuted)
    assert event.type == "trade.executed"
    assert event.schema_version == TradeExecuted.schema_version == 2
    assert event.key == trade.bot_id
    assert event.source == "trade-sim"
    assert event.id.version == 7
    assert before <= event.time <= datetime.now(UTC)
    assert event.correlation_id is None
    assert event.causation_id is None


def test_ids_are_time_ordered(make_trade: Callable[..., TradeExecuted]) -> None:
    ids = [new_event(make_trade(), source="t").id for _ in range(50)]

    assert ids == sorted(ids)
    assert len(set(ids)) == 50


def test_new_event_accepts_explicit_fields(make_trade: Callable[..., TradeExecuted]) -> None:
    cause, correlation = uuid4(), uuid4()
    at = datetime(2024, 1, 1, 3, tzinfo=timezone(timedelta(hours=2)))

    event = new_event(
        make_trade(),
        source="trade-sim",
        key="o-1",
        correlation_id=correlation,
        causation_id=cause,
        time=at,
    )

    assert event.key == "o-1"
    assert (event.correlation_id, event.causation_id) == (correlation, cause)
    assert event.time == at
    assert event.time.utcoffset() == timedelta(0)


def test_naive_time_is_rejected(make_trade: Callable[..., TradeExecuted]) -> None:
    with pytest.raises(ValidationError) as info:
        new_event(make_trade(), source="t", time=datetime(2024, 1, 1))

    field, message = only_error(info)
    assert field == "time"
    assert "naive datetimes are rejected" in message


@pytest.mark.parametrize("key", ["", "a.b", "*", "bot>", "bot 1", "tab\there", "nl\n"])
def test_key_must_be_a_subject_token(make_trade: Callable[..., TradeExecuted], key: str) -> None:
    with pytest.raises(ValidationError) as info:
        new_event(make_trade(), source="t", key=key)

    field, message = only_error(info)
    assert field == "key"
    assert message.startswith("must be a NATS subject token")


@pytest.mark.parametrize("symbol", ["", "BTC.USDT", "BTC*", "BTC>", "BTC USDT", "BTC\x00"])
def test_symbol_must_be_a_subject_token(symbol: str) -> None:
    with pytest.raises(ValidationError) as info:
        MarketTick(
            symbol=symbol,
            price=Decimal("1"),
            quantity=Decimal("1"),
            timestamp=datetime.now(UTC),
            is_buyer_maker=False,
        )

    field, message = only_error(info)
    assert field == "symbol"
    assert "must be a NATS subject token" in message


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (1.5, 'must be a decimal string, e.g. "101.25", not a JSON number'),
        (2, 'must be a decimal string, e.g. "101.25", not a JSON number'),
        (Decimal("NaN"), "Input should be a finite number"),
        ("Infinity", "Input should be a finite number"),
        ("-1", "Input should be greater than 0"),
    ],
)
def test_python_decimals_follow_the_wire_rule(
    make_trade: Callable[..., TradeExecuted], value: object, message: str
) -> None:
    with pytest.raises(ValidationError) as info:
        make_trade(price=value)

    assert only_error(info) == ("price", message)


def test_python_decimals_accept_strings(make_trade: Callable[..., TradeExecuted]) -> None:
    assert make_trade(price="64000.10").price == Decimal("64000.10")


def test_payloads_are_frozen(make_trade: Callable[..., TradeExecuted]) -> None:
    trade = make_trade()

    with pytest.raises(ValidationError) as info:
        trade.price = Decimal(1)  # type: ignore[misc]

    assert info.value.errors()[0]["type"] == "frozen_instance"


def test_envelope_type_must_match_payload(make_trade: Callable[..., TradeExecuted]) -> None:
    with pytest.raises(ValidationError) as info:
        event_class(TradeExecuted)(
            type="trade.failed", schema_version=2, source="t", key="k", data=make_trade()
        )

    assert "type 'trade.failed' does not match payload TradeExecuted" in str(info.value)


def test_envelope_version_must_be_current(make_trade: Callable[..., TradeExecuted]) -> None:
    with pytest.raises(ValidationError) as info:
        event_class(TradeExecuted)(
            type="trade.executed", schema_version=1, source="t", key="k", data=make_trade()
        )

    assert "schema_version 1 is not the current version 2" in str(info.value)


def test_candle_prices_must_be_consistent() -> None:
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    with pytest.raises(ValidationError) as info:
        MarketCandle(
            symbol="BTCUSDT",
            interval=CandleInterval.M1,
            open_time=t0,
            close_time=t0 + CandleInterval.M1.duration,
            open=Decimal("10"),
            high=Decimal("9"),
            low=Decimal("8"),
            close=Decimal("9"),
            volume=Decimal("0"),
            trade_count=0,
        )

    assert "high >= open and close" in str(info.value)


def test_payload_declaring_unknown_subject_field_fails_at_import() -> None:
    with pytest.raises(TypeError, match="names unknown fields: nope"):

        class Broken(Payload):
            event_type = "x.broken"
            schema_version = 1
            subject_fields = ("nope",)
            key_field = "nope"

            a: str


def test_event_ids_are_stdlib_uuids(make_trade: Callable[..., TradeExecuted]) -> None:
    assert type(new_event(make_trade(), source="t").id) is UUID
