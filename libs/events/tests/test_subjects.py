"""Subjects: one per event type and entity, never written as literals by services."""

from __future__ import annotations

import pytest

from fleet_events import (
    BOTS_SUBJECTS,
    DLQ_SUBJECTS,
    EVENT_TYPES,
    MARKET_SUBJECTS,
    OPS_SUBJECTS,
    TRADES_SUBJECTS,
    MarketCandle,
    Payload,
    TradeExecuted,
    check_subject_token,
    dlq_filter,
    dlq_subject,
    new_event,
    subject_filter,
    subject_for,
    subject_pattern,
)

BOT = "0b9d6a52-3f0e-4c1e-9a57-3c9c2f6f1a10"

EXPECTED = {
    "bot.created": f"bot.created.{BOT}",
    "bot.updated": f"bot.updated.{BOT}",
    "bot.deployed": f"bot.deployed.{BOT}",
    "bot.started": f"bot.started.{BOT}",
    "bot.stopped": f"bot.stopped.{BOT}",
    "bot.deleted": f"bot.deleted.{BOT}",
    "trade.executed": f"trade.executed.{BOT}",
    "trade.completed": f"trade.completed.{BOT}",
    "trade.failed": f"trade.failed.{BOT}",
    "market.tick": "market.tick.ETHUSDT",
    "market.candle": "market.candle.5m.ETHUSDT",
    "ops.backup.requested": "ops.backup.requested.bk-20240501",
    "ops.backup.completed": "ops.backup.completed.bk-20240501",
    "ops.backup.failed": "ops.backup.failed.bk-20240502",
}

ROOTS = {
    "bot": BOTS_SUBJECTS,
    "trade": TRADES_SUBJECTS,
    "market": MARKET_SUBJECTS,
    "ops": OPS_SUBJECTS,
}


def test_every_type_has_an_expected_subject() -> None:
    assert set(EXPECTED) == set(EVENT_TYPES)


@pytest.mark.parametrize("event_type", sorted(EXPECTED))
def test_subject_for(event_type: str, samples: dict[str, Payload]) -> None:
    event = new_event(samples[event_type], source="test")

    subject = subject_for(event)

    assert subject == EXPECTED[event_type]
    root = ROOTS[event_type.split(".", maxsplit=1)[0]]
    assert subject.startswith(root.removesuffix(">"))


def test_subject_ignores_an_overridden_key(samples: dict[str, Payload]) -> None:
    # Partitioning follows the payload's entity, whatever key the publisher chose.
    event = new_event(samples["trade.executed"], source="test", key="o-1")

    assert subject_for(event) == f"trade.executed.{BOT}"


def test_stream_roots() -> None:
    assert (BOTS_SUBJECTS, TRADES_SUBJECTS, MARKET_SUBJECTS, OPS_SUBJECTS, DLQ_SUBJECTS) == (
        "bot.>",
        "trade.>",
        "market.>",
        "ops.>",
        "dlq.>",
    )


def test_filters_and_patterns() -> None:
    assert subject_filter(TradeExecuted) == "trade.executed.*"
    assert subject_filter(MarketCandle) == "market.candle.*.*"
    assert subject_pattern(TradeExecuted) == "trade.executed.{bot_id}"
    assert subject_pattern(MarketCandle) == "market.candle.{interval}.{symbol}"


def test_dlq_subject() -> None:
    assert dlq_subject("trade-recorder", f"trade.executed.{BOT}") == (
        f"dlq.trade-recorder.trade.executed.{BOT}"
    )
    assert dlq_filter("trade-recorder") == "dlq.trade-recorder.>"


@pytest.mark.parametrize(
    ("worker", "subject", "message"),
    [
        ("trade.recorder", "trade.executed.b", "contains '.'"),
        ("", "trade.executed.b", "non-empty"),
        ("rec", "trade.executed.*", "contains '*'"),
        ("rec", "trade..b", "non-empty"),
        ("rec", "trade.>", "contains '>'"),
    ],
)
def test_dlq_subject_rejects_bad_tokens(worker: str, subject: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dlq_subject(worker, subject)


@pytest.mark.parametrize(
    "token", ["a b", "a\tb", "a\u00a0b", "a\x7fb", "a\u200bb", "a\u2028b", "é-ok", "BTC-USD_1"]
)
def test_core_rule_matches_python_rule(token: str) -> None:
    # The pydantic-core regex and check_subject_token must agree on every token.
    try:
        check_subject_token(token)
        python_ok = True
    except ValueError:
        python_ok = False
    try:
        new_event(
            TradeExecuted.model_validate(
                {
                    "trade_id": "t",
                    "order_id": "o",
                    "bot_id": token,
                    "user_id": "u",
                    "symbol": "S",
                    "side": "BUY",
                    "quantity": "1",
                    "price": "1",
                    "fee": "0",
                    "fee_currency": "USDT",
                    "executed_at": "2024-01-01T00:00:00Z",
                }
            ),
            source="t",
        )
        core_ok = True
    except ValueError:
        core_ok = False
    assert python_ok == core_ok
