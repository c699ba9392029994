"""NATS subjects and stream names of the fleet.

Services never write subject literals; they use these constants and functions.

Rule: subject = event type + entity tokens (``trade.executed.<bot_id>``,
``market.candle.<interval>.<symbol>``), so a stream subject transform can partition
on the last token and keep each entity's events in order.
"""

from __future__ import annotations

from typing import Any

from .envelope import Event
from .payload import Payload
from .scalars import check_subject_token

BOTS_STREAM = "BOTS"
TRADES_STREAM = "TRADES"
MARKET_STREAM = "MARKET"
OPS_STREAM = "OPS"
DLQ_STREAM = "DLQ"

BOTS_SUBJECTS = "bot.>"
TRADES_SUBJECTS = "trade.>"
MARKET_SUBJECTS = "market.>"
OPS_SUBJECTS = "ops.>"
DLQ_SUBJECTS = "dlq.>"

DLQ_PREFIX = "dlq"


def subject_for(event: Event[Any]) -> str:
    """Return the subject ``event`` is published on: its type then its entity tokens."""
    return ".".join((event.type, *event.data.subject_tokens()))


def subject_filter(payload_cls: type[Payload]) -> str:
    """Return the filter subject matching every event of one type (``trade.executed.*``)."""
    return ".".join((payload_cls.event_type, *("*" for _ in payload_cls.subject_fields)))


def subject_pattern(payload_cls: type[Payload]) -> str:
    """Return the subject with named parameters, as AsyncAPI writes it.

    ``market.candle.{interval}.{symbol}``.
    """
    params = (f"{{{name}}}" for name in payload_cls.subject_fields)
    return ".".join((payload_cls.event_type, *params))


def check_subject(subject: str) -> str:
    """Return ``subject`` if it is a concrete (wildcard-free) subject, else raise ValueError."""
    for token in subject.split("."):
        check_subject_token(token)
    return subject


def dlq_subject(worker: str, original_subject: str) -> str:
    """Return the dead-letter subject of a message ``worker`` gave up on.

    ``dlq.<worker>.<original subject>``: one stream (``dlq.>``) holds all dead letters,
    filterable per worker (``dlq.<worker>.>``) and per original subject.
    """
    check_subject_token(worker)
    check_subject(original_subject)
    return f"{DLQ_PREFIX}.{worker}.{original_subject}"


def dlq_filter(worker: str) -> str:
    """Return the filter subject of all dead letters of ``worker``."""
    check_subject_token(worker)
    return f"{DLQ_PREFIX}.{worker}.>"
