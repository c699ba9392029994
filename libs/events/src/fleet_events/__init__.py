"""Tradefleet event contract: envelope, typed payloads, subjects, codec, upcasters.

Pure data definitions: nothing here opens a connection or reads the environment.

Each name is imported from its module on first use (PEP 562), so a reader that needs only
``CandleInterval`` or ``fleet_events.history`` (the market-history layout) does not load
pydantic and the payload models (~15 MB resident).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .bots import (
        BotCreated,
        BotDeleted,
        BotDeployed,
        BotStarted,
        BotStatus,
        BotStopped,
        BotUpdated,
    )
    from .codec import decode, decode_as, encode
    from .envelope import Event, event_class, new_event
    from .errors import (
        DecodeError,
        InvalidEvent,
        MalformedEvent,
        UnexpectedEventType,
        UnknownEventType,
        UnknownSchemaVersion,
    )
    from .intervals import CandleInterval
    from .market import MarketCandle, MarketTick
    from .ops import BackupCompleted, BackupFailed, BackupRequested, BackupTarget
    from .payload import Payload
    from .registry import EVENT_TYPES, event_json_schemas
    from .scalars import (
        DecimalStr,
        NonNegativeDecimal,
        PositiveDecimal,
        SubjectToken,
        UtcDatetime,
        check_subject_token,
    )
    from .subjects import (
        BOTS_STREAM,
        BOTS_SUBJECTS,
        DLQ_STREAM,
        DLQ_SUBJECTS,
        MARKET_STREAM,
        MARKET_SUBJECTS,
        OPS_STREAM,
        OPS_SUBJECTS,
        TRADES_STREAM,
        TRADES_SUBJECTS,
        check_subject,
        dlq_filter,
        dlq_subject,
        subject_filter,
        subject_for,
        subject_pattern,
    )
    from .trades import Side, TradeCompleted, TradeExecuted, TradeFailed
    from .upcasting import UPCASTERS, Upcaster, UpcasterRegistry

_HOMES = {
    "BOTS_STREAM": "subjects",
    "BOTS_SUBJECTS": "subjects",
    "DLQ_STREAM": "subjects",
    "DLQ_SUBJECTS": "subjects",
    "EVENT_TYPES": "registry",
    "MARKET_STREAM": "subjects",
    "MARKET_SUBJECTS": "subjects",
    "OPS_STREAM": "subjects",
    "OPS_SUBJECTS": "subjects",
    "TRADES_STREAM": "subjects",
    "TRADES_SUBJECTS": "subjects",
    "UPCASTERS": "upcasting",
    "BackupCompleted": "ops",
    "BackupFailed": "ops",
    "BackupRequested": "ops",
    "BackupTarget": "ops",
    "BotCreated": "bots",
    "BotDeleted": "bots",
    "BotDeployed": "bots",
    "BotStarted": "bots",
    "BotStatus": "bots",
    "BotStopped": "bots",
    "BotUpdated": "bots",
    "CandleInterval": "intervals",
    "DecimalStr": "scalars",
    "DecodeError": "errors",
    "Event": "envelope",
    "InvalidEvent": "errors",
    "MalformedEvent": "errors",
    "MarketCandle": "market",
    "MarketTick": "market",
    "NonNegativeDecimal": "scalars",
    "Payload": "payload",
    "PositiveDecimal": "scalars",
    "Side": "trades",
    "SubjectToken": "scalars",
    "TradeCompleted": "trades",
    "TradeExecuted": "trades",
    "TradeFailed": "trades",
    "UnexpectedEventType": "errors",
    "UnknownEventType": "errors",
    "UnknownSchemaVersion": "errors",
    "Upcaster": "upcasting",
    "UpcasterRegistry": "upcasting",
    "UtcDatetime": "scalars",
    "check_subject": "subjects",
    "check_subject_token": "scalars",
    "decode": "codec",
    "decode_as": "codec",
    "dlq_filter": "subjects",
    "dlq_subject": "subjects",
    "encode": "codec",
    "event_class": "envelope",
    "event_json_schemas": "registry",
    "new_event": "envelope",
    "subject_filter": "subjects",
    "subject_for": "subjects",
    "subject_pattern": "subjects",
}
"""The module of each public name."""

__all__ = [
    "BOTS_STREAM",
    "BOTS_SUBJECTS",
    "DLQ_STREAM",
    "DLQ_SUBJECTS",
    "EVENT_TYPES",
    "MARKET_STREAM",
    "MARKET_SUBJECTS",
    "OPS_STREAM",
    "OPS_SUBJECTS",
    "TRADES_STREAM",
    "TRADES_SUBJECTS",
    "UPCASTERS",
    "BackupCompleted",
    "BackupFailed",
    "BackupRequested",
    "BackupTarget",
    "BotCreated",
    "BotDeleted",
    "BotDeployed",
    "BotStarted",
    "BotStatus",
    "BotStopped",
    "BotUpdated",
    "CandleInterval",
    "DecimalStr",
    "DecodeError",
    "Event",
    "InvalidEvent",
    "MalformedEvent",
    "MarketCandle",
    "MarketTick",
    "NonNegativeDecimal",
    "Payload",
    "PositiveDecimal",
    "Side",
    "SubjectToken",
    "TradeCompleted",
    "TradeExecuted",
    "TradeFailed",
    "UnexpectedEventType",
    "UnknownEventType",
    "UnknownSchemaVersion",
    "Upcaster",
    "UpcasterRegistry",
    "UtcDatetime",
    "check_subject",
    "check_subject_token",
    "decode",
    "decode_as",
    "dlq_filter",
    "dlq_subject",
    "encode",
    "event_class",
    "event_json_schemas",
    "new_event",
    "subject_filter",
    "subject_for",
    "subject_pattern",
]


def __getattr__(name: str) -> Any:
    """A public name, imported from its module the first time it is asked for."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
