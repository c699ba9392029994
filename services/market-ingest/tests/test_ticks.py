"""The tick decoder: the canonical lane accepts only what the contract accepts, with the
same trade, and every message gets the contract's verdict."""

from __future__ import annotations

from datetime import timedelta

import pytest

from fleet_events import (
    BotCreated,
    InvalidEvent,
    MarketTick,
    UnexpectedEventType,
    decode_as,
    encode,
    new_event,
)
from fleet_testing.mutations import check_lanes, mutations
from market_ingest.bars import dec, iso_us
from market_ingest.ticks import Trade, canonical_trade, decode_trade

from .conftest import T0, generate_ticks, tick


def contract_trade(raw: bytes) -> Trade:
    """The trade computed from the contract's decoding alone."""
    event = decode_as(raw, MarketTick)
    return Trade.of(event.id, event.data)


def test_the_encoders_ticks_take_the_canonical_lane_with_the_contracts_values() -> None:
    events = generate_ticks(5, 2000)
    events += [
        tick("BTCUSDT", T0, "100.10", "0.5", trade_id="x-1"),
        tick("BTCUSDT", T0 + timedelta(microseconds=1), "0.000001", "123456789012345678901.5"),
        tick("BTC_USD-1", T0 + timedelta(seconds=1), "7", "1"),
    ]
    for event in events:
        raw = encode(event)
        fast = canonical_trade(raw)
        assert fast is not None, raw
        assert fast == contract_trade(raw) == decode_trade(raw)
        assert fast.time_text == iso_us(fast.us)
        assert (fast.price_text, fast.quantity_text) == (dec(fast.price), dec(fast.quantity))


def _other_spellings() -> list[bytes]:
    exponent_price = encode(tick("ETHUSDT", T0, "1E+2", "1"))
    exponent_qty = encode(tick("ETHUSDT", T0, "100", "1.0E-7"))
    # The same time with an all-zero fraction and a +00:00 offset.
    zero_fraction = encode(tick("ETHUSDT", T0, "100", "1")).replace(
        b'"2024-03-01T00:00:00Z"', b'"2024-03-01T00:00:00.000000+00:00"'
    )
    non_ascii_symbol = encode(tick("BTC\u00dcSD", T0, "100", "1"))
    zero_fraction_z = encode(tick("ETHUSDT", T0, "100", "1")).replace(
        b'"2024-03-01T00:00:00Z"', b'"2024-03-01T00:00:00.000000Z"'
    )
    return [exponent_price, exponent_qty, zero_fraction, non_ascii_symbol, zero_fraction_z]


def test_other_spellings_take_the_contract_lane_to_the_same_texts() -> None:
    spellings = _other_spellings()
    assert b".000000+00:00" in spellings[2]
    assert b".000000Z" in spellings[4]
    for raw in spellings:
        assert canonical_trade(raw) is None, raw
        trade = decode_trade(raw)
        assert trade == contract_trade(raw)
        assert (trade.price_text, trade.quantity_text) == (dec(trade.price), dec(trade.quantity))
        assert trade.time_text == iso_us(trade.us)
    assert [decode_trade(raw).price_text for raw in spellings[:2]] == ["100", "100"]
    assert decode_trade(spellings[1]).quantity_text == "0.00000010"
    assert decode_trade(spellings[2]).time_text == "2024-03-01T00:00:00Z"
    assert decode_trade(spellings[4]).time_text == "2024-03-01T00:00:00Z"


def test_what_the_contract_refuses_is_refused_with_its_reason() -> None:
    good = encode(tick("ETHUSDT", T0, "10", "1"))
    zero_price = good.replace(b'"price":"10"', b'"price":"0.00"')
    no_such_day = good.replace(b'"2024-03-01T00:00:00Z"', b'"2023-02-29T00:00:00Z"')
    for raw in (zero_price, no_such_day):
        assert raw != good
        with pytest.raises(InvalidEvent):
            decode_trade(raw)
    other = encode(new_event(_bot(), source="test"))
    with pytest.raises(UnexpectedEventType):
        decode_trade(other)


def _bot() -> BotCreated:
    return BotCreated(bot_id="b1", version=1, user_id="u1", name="bot", type="realtime", config={})


def test_mutated_messages_get_the_contracts_verdict() -> None:
    # Single-byte changes to valid encodings: whenever the canonical lane accepts one, the
    # contract accepts it too with the same trade; whatever the contract refuses,
    # decode_trade refuses with the same reason.
    sources = [encode(e) for e in generate_ticks(9, 40)]
    verdicts = check_lanes(
        mutations(sources, 6000, seed=17),
        contract=contract_trade,
        fast=canonical_trade,
        decode=decode_trade,
    )
    # Every outcome was exercised many times.
    assert verdicts.accepted > 500, verdicts
    assert verdicts.refused > 500, verdicts
    assert verdicts.fast_accepted > 200, verdicts
