"""Tradefleet event contract: envelope, typed payloads, subjects, codec, upcasters.

Pure data definitions: nothing here opens a connection or reads the environment.
"""

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
from .market import CandleInterval, MarketCandle, MarketTick
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
