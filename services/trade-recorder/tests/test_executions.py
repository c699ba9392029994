"""The TRADES decoder: the canonical lane accepts only what the contract accepts, with the
same execution, and every message gets the contract's verdict."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from fleet_events import (
    BotCreated,
    DecodeError,
    Event,
    InvalidEvent,
    Side,
    TradeExecuted,
    encode,
    new_event,
)
from fleet_runtime.errors import EventRejected
from fleet_runtime.staging import decode_accepted
from fleet_testing.mutations import check_lanes, edited, mutations
from trade_recorder.executions import (
    ACCEPTS,
    Execution,
    canonical_execution,
    decode_trade_event,
)
from trade_recorder.logic import split_events

from .conftest import T0, TradeEvents


def contract_value(raw: bytes) -> Execution | Event[Any]:
    """What the contract's decoding alone gives: the execution of a fill, else the event."""
    event = decode_accepted(raw, ACCEPTS)
    if isinstance(event.data, TradeExecuted):
        return Execution.of(event)
    return event


def exactly(decoded: Execution | Event[Any]) -> object:
    """``decoded`` with its decimals' digits and exponents (``Decimal`` equality ignores
    the exponent: ``1.0 == 1``, the stored numeric would not)."""
    if isinstance(decoded, Execution):
        return decoded, [d.as_tuple() for d in (decoded.price, decoded.quantity, decoded.fee)]
    return decoded


def _fast(raw: bytes) -> object:
    execution = canonical_execution(raw)
    return None if execution is None else exactly(execution)


LANES: dict[str, Any] = {
    "contract": lambda raw: exactly(contract_value(raw)),
    "fast": _fast,
    "decode": lambda raw: exactly(decode_trade_event(raw)),
    "refusals": (DecodeError, EventRejected),
}
"""``check_lanes`` arguments: the decoder and its canonical lane against the contract."""


def generate_fills(seed: int, n: int) -> list[Event[TradeExecuted]]:
    """``n`` fills with random sides, ids, decimals of every scale and times."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        scale = rng.randint(0, 12)
        quantity = Decimal(rng.randint(1, 10**9)).scaleb(-scale)
        price = Decimal(rng.randint(1, 10**9)).scaleb(-rng.randint(0, 8))
        fee = Decimal(rng.choice((0, rng.randint(0, 10**6)))).scaleb(-rng.randint(0, 10))
        at = T0 + timedelta(microseconds=rng.choice((0, rng.randint(1, 10**12))))
        out.append(
            TradeEvents.fill(
                f"t-{seed}-{i}",
                side=rng.choice((Side.BUY, Side.SELL)),
                quantity=quantity,
                price=price,
                fee=fee,
                order_id=f"o-{rng.randint(0, n // 3)}",
                bot_id=f"bot_{rng.randint(0, 9)}",
                user_id=f"user {rng.randint(0, 4)}",
                symbol=rng.choice(("BTCUSDT", "ETH-USD", "SOL_1")),
                at=at,
            )
        )
    return out


def _with_currency(event: Event[TradeExecuted], currency: str) -> Event[TradeExecuted]:
    return new_event(event.data.model_copy(update={"fee_currency": currency}), source="test")


def _edge_fills() -> list[Event[TradeExecuted]]:
    fill = TradeEvents.fill
    return [
        fill("tiny", quantity="0.0000001", price="0.000000001", fee="0.00"),
        fill("exponents", quantity="1.5E-7", price="1E+2", fee="0E-8"),
        fill("huge", quantity="123456789012345678901.5", price="99999999999999.99999999"),
        fill("zero fee", fee="0"),
        fill("t-\u00e9\u00df\u4e2d", order_id="o \u00fc", user_id="\U0001f600"),
        fill("second", at=T0 + timedelta(seconds=1)),
        fill("micro", at=T0 + timedelta(microseconds=1)),
        fill("late", at=T0.replace(year=9999, month=12, day=31, hour=23, minute=59)),
        _with_currency(fill("ten"), "ABCDEFGHIJ"),
        _with_currency(fill("one"), "\u20ac"),
        new_event(
            fill("linked").data,
            source="sim \u00e9",
            correlation_id=fill("c").id,
            causation_id=fill("d").id,
        ),
    ]


def test_the_encoders_fills_take_the_canonical_lane_with_the_contracts_values() -> None:
    for event in generate_fills(5, 2000) + _edge_fills():
        raw = encode(event)
        fast = canonical_execution(raw)
        assert fast is not None, raw
        assert exactly(fast) == exactly(contract_value(raw)) == exactly(decode_trade_event(raw))
        assert fast.id == str(event.id)
        assert fast.executed_at == event.data.executed_at
        assert exactly(fast) == exactly(Execution.of(event))


def _other_spellings() -> list[bytes]:
    good = encode(TradeEvents.fill("t1", quantity="2", price="100", fee="0.5"))
    data = good.split(b'"data":', 1)[1]
    v1 = data.replace(b'"executed_at"', b'"timestamp"').replace(b'"BUY"', b'"buy"')
    return edited(
        good,
        [
            (b'"price":"100"', b'"price":"1E2"'),
            (b'"quantity":"2"', b'"quantity":"2.0e+0"'),
            (b'"fee":"0.5"', b'"fee":"05E-1"'),
            (b'"2025-01-02T09:30:00Z"', b'"2025-01-02T09:30:00.000000Z"'),
            (b'"2025-01-02T09:30:00Z"', b'"2025-01-02T10:30:00+01:00"'),
            (b'"user_id":"user-1"', b'"user_id":"user\\u002d1"'),
            (b'"bot_id":"bot-1"', b'"bot_id":"bot\xc3\xbc"'),
            (b'"side":"BUY","quantity":"2"', b'"quantity":"2","side":"BUY"'),
            (b',"data":', b', "data": '),
        ],
    ) + edited(good.replace(data, v1), [(b'"schema_version":2', b'"schema_version":1')])


def test_other_spellings_take_the_contract_lane_to_the_same_execution() -> None:
    spellings = _other_spellings()
    verdicts = check_lanes(spellings, **LANES)
    assert (verdicts.accepted, verdicts.fast_accepted) == (len(spellings), 0)
    reference = canonical_execution(
        encode(TradeEvents.fill("t1", quantity="2", price="100", fee="0.5"))
    )
    assert reference is not None
    bot_ids = set()
    for raw in spellings:
        execution = decode_trade_event(raw)
        assert isinstance(execution, Execution)
        # The same fill, whatever the spelling (in another event; one bot id is not ASCII).
        assert execution._replace(id=reference.id, bot_id=reference.bot_id) == reference
        bot_ids.add(execution.bot_id)
    assert bot_ids == {"bot-1", "bot\u00fc"}


def test_order_outcomes_stay_events_and_other_types_are_refused_with_the_runtimes_reason() -> None:
    for event in (TradeEvents.completed("o1"), TradeEvents.failed("o2")):
        assert decode_trade_event(encode(event)) == event
    bot = BotCreated(bot_id="b1", version=1, user_id="u1", name="bot", type="realtime", config={})
    other = encode(new_event(bot, source="test"))
    with pytest.raises(EventRejected) as refused:
        decode_trade_event(other)
    with pytest.raises(EventRejected) as expected:
        decode_accepted(other, ACCEPTS)
    assert refused.value.args == expected.value.args
    assert "bot.created is not one of: trade.executed" in str(refused.value)


def test_what_the_contract_refuses_is_refused_with_its_reason() -> None:
    good = encode(TradeEvents.fill("t1", quantity="2", price="100", fee="0.5"))
    refused = edited(
        good,
        [
            (b'"price":"100"', b'"price":"0.00"'),
            (b'"quantity":"2"', b'"quantity":"0"'),
            (b'"fee":"0.5"', b'"fee":"-0.5"'),
            (b'"2025-01-02T09:30:00Z"', b'"2025-02-29T09:30:00Z"'),
            (b'"fee_currency":"USDT"', b'"fee_currency":"ABCDEFGHIJK"'),
            (b'"side":"BUY"', b'"side":"buy"'),
            (b'"trade_id":"t1"', b'"trade_id":""'),
            (b'"symbol":"BTCUSDT"', b'"symbol":"BTC.USDT"'),
        ],
    )
    assert check_lanes(refused, **LANES).refused == len(refused)
    for raw in refused:
        with pytest.raises(InvalidEvent):
            decode_trade_event(raw)


def test_mutated_messages_get_the_contracts_verdict() -> None:
    # Single-byte changes to valid encodings: whenever the canonical lane accepts one, the
    # contract accepts it too with the same execution; whatever the contract refuses,
    # decode_trade_event refuses with the same error and reason.
    events: list[Event[Any]] = [*generate_fills(9, 40), *_edge_fills()]
    events += [TradeEvents.completed("o-1"), TradeEvents.failed("o-2")]
    verdicts = check_lanes(mutations([encode(e) for e in events], 8000, seed=23), **LANES)
    # Every outcome was exercised many times.
    assert verdicts.accepted > 500, verdicts
    assert verdicts.refused > 500, verdicts
    assert verdicts.fast_accepted > 200, verdicts


def test_a_fill_splits_the_same_as_its_event_or_its_execution() -> None:
    fills = generate_fills(3, 50)
    as_events = split_events((e, n) for n, e in enumerate(fills, 1))
    as_decoded = split_events((decode_trade_event(encode(e)), n) for n, e in enumerate(fills, 1))
    assert as_events == as_decoded
    assert as_events.fill_count == len(as_events.fills) == 50
