"""The BOTS decoder: the canonical lane accepts only what the contract accepts, with the
same change, and every message gets the contract's verdict."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest

from bot_lifecycle.logic import Applied, decide
from bot_lifecycle.transitions import (
    ACCEPTS,
    StatusChange,
    canonical_change,
    decode_bot_event,
)
from fleet_events import (
    BotStarted,
    BotStopped,
    DecodeError,
    Event,
    InvalidEvent,
    TradeFailed,
    encode,
    new_event,
)
from fleet_runtime.errors import EventRejected
from fleet_runtime.staging import decode_accepted
from fleet_testing.mutations import check_lanes, edited, mutations

from .conftest import T0, BotEvents


def contract_value(raw: bytes) -> StatusChange | Event[Any]:
    """What the contract's decoding alone gives: the change of a start or stop, else the
    event."""
    event = decode_accepted(raw, ACCEPTS)
    if isinstance(event.data, BotStarted | BotStopped):
        return StatusChange.of(event)
    return event


LANES: dict[str, Any] = {
    "contract": contract_value,
    "fast": canonical_change,
    "decode": decode_bot_event,
    "refusals": (DecodeError, EventRejected),
}
"""``check_lanes`` arguments: the decoder and its canonical lane against the contract."""


def generate_changes(seed: int, n: int) -> list[Event[Any]]:
    """``n`` starts and stops with random ids, versions, reasons and times."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        cls = rng.choice((BotStarted, BotStopped))
        reason = rng.choice((None, "", "requested", f"crash \u00e9 {i}", "\U0001f600 oom"))
        out.append(
            new_event(
                cls(
                    bot_id=f"bot_{rng.randint(0, 99)}-x",
                    version=rng.choice((1, rng.randint(2, 10**6), 999_999_999)),
                    deployment_id=f"dep-{rng.randint(0, 10**9)}",
                    reason=reason,
                ),
                source=rng.choice(("bots", "api \u00fc")),
                time=T0 + timedelta(microseconds=rng.choice((0, rng.randint(1, 10**12)))),
                correlation_id=rng.choice((None, BotEvents.created("c").id)),
            )
        )
    return out


def test_the_encoders_starts_and_stops_take_the_canonical_lane_with_the_contracts_values() -> None:
    events = generate_changes(5, 2000)
    events += [BotEvents.started("b1", 3), BotEvents.stopped("b1", 4, reason="x")]
    for event in events:
        raw = encode(event)
        fast = canonical_change(raw)
        assert fast is not None, raw
        assert fast == contract_value(raw) == decode_bot_event(raw)
        assert (fast.id, fast.type, fast.time) == (str(event.id), event.type, event.time)
        assert fast.data is fast


def test_other_spellings_and_types_take_the_contract_lane() -> None:
    good = encode(BotEvents.stopped("b1", 4, reason="requested"))
    spellings = edited(
        good,
        [
            (b'"reason":"requested"', b'"reason":"requ\\u0065sted"'),
            (b'"bot_id":"b1"', b'"bot_id":"b\xc3\xbc"'),
            (b'"version":4', b'"version":4.0'),
            (b'"version":4,', b'"version":4 ,'),
            (b'Z","key"', b'+00:00","key"'),
        ],
    )
    verdicts = check_lanes(spellings, **LANES)
    assert (verdicts.accepted, verdicts.fast_accepted) == (len(spellings), 0)
    reference = canonical_change(good)
    assert reference is not None
    for raw in spellings:
        change = decode_bot_event(raw)
        assert isinstance(change, StatusChange)
        if b"\xc3\xbc" not in raw:
            assert change == reference
    for other in (BotEvents.created("b1"), BotEvents.deployed("b1", 2), BotEvents.deleted("b1", 5)):
        assert decode_bot_event(encode(other)) == other


def test_what_the_contract_refuses_is_refused_with_its_reason() -> None:
    good = encode(BotEvents.started("b1", 3))
    refused = edited(
        good,
        [
            (b'"version":3', b'"version":0'),
            (b'"deployment_id":"d1"', b'"deployment_id":"d.1"'),
            (b'"deployment_id":"d1"', b'"deployment_id":""'),
            (b'"time":"2025-03-01T12:03:00Z"', b'"time":"2025-02-29T12:03:00Z"'),
            (b'"reason":null', b'"reason":3'),
        ],
    )
    assert check_lanes(refused, **LANES).refused == len(refused)
    for raw in refused:
        with pytest.raises(InvalidEvent):
            decode_bot_event(raw)
    trade = TradeFailed(order_id="o", bot_id="b1", user_id="u", symbol="X", reason="r")
    other = encode(new_event(trade, source="test"))
    with pytest.raises(EventRejected) as rejected:
        decode_bot_event(other)
    with pytest.raises(EventRejected) as expected_rejection:
        decode_accepted(other, ACCEPTS)
    assert rejected.value.args == expected_rejection.value.args


def test_mutated_messages_get_the_contracts_verdict() -> None:
    # Single-byte changes to valid encodings: whenever the canonical lane accepts one, the
    # contract accepts it too with the same change; whatever the contract refuses,
    # decode_bot_event refuses with the same error and reason.
    events = [*generate_changes(9, 40), BotEvents.created("b1"), BotEvents.deployed("b1", 2)]
    verdicts = check_lanes(mutations([encode(e) for e in events], 8000, seed=29), **LANES)
    # Every outcome was exercised many times.
    assert verdicts.accepted > 500, verdicts
    assert verdicts.refused > 500, verdicts
    assert verdicts.fast_accepted > 200, verdicts


def test_the_state_machine_decides_the_same_on_a_change_and_on_its_event() -> None:
    created = decide(None, {}, BotEvents.created("b1"))
    assert isinstance(created, Applied)
    deployed = decide(created.bot, {}, BotEvents.deployed("b1", 2))
    assert isinstance(deployed, Applied)
    deployments = {d.id: d for d in deployed.deployments}
    for event in (BotEvents.started("b1", 3), BotEvents.stopped("b1", 3)):
        change = decode_bot_event(encode(event))
        assert isinstance(change, StatusChange)
        assert decide(deployed.bot, deployments, change) == decide(deployed.bot, deployments, event)
