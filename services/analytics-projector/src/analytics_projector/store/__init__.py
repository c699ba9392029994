"""The MongoDB adapter of analytics-projector (the only module family that imports pymongo)."""

from __future__ import annotations

from typing import Any, Protocol

from analytics_projector.retention import Retention
from analytics_projector.store.bots import apply_bots
from analytics_projector.store.candles import apply_candles
from analytics_projector.store.client import (
    INDEXES,
    PRICE_HISTORY_EXPIRY_INDEX,
    TRADING_EVENTS_TTL_S,
    MongoFrame,
)
from analytics_projector.store.trades import TradesApplied, apply_trades
from fleet_runtime.delivery import Batch

__all__ = [
    "INDEXES",
    "PRICE_HISTORY_EXPIRY_INDEX",
    "TRADING_EVENTS_TTL_S",
    "AnalyticsStore",
    "MongoAnalyticsStore",
    "Retention",
    "TradesApplied",
]


class AnalyticsStore(Protocol):
    """What the handlers need: one idempotent, checkpointed write per batch and stream."""

    async def record_trades(self, batch: Batch[Any]) -> TradesApplied | None:
        """Apply trade events (None when the checkpoint covered the batch)."""

    async def record_candles(self, batch: Batch[Any]) -> int | None:
        """Apply closed candles."""

    async def record_bots(self, batch: Batch[Any]) -> int | None:
        """Apply bot lifecycle events."""


class MongoAnalyticsStore:
    """``AnalyticsStore`` on MongoDB: one transaction per batch with its checkpoint."""

    def __init__(self, frame: MongoFrame, retention: Retention | None = None) -> None:
        self.frame = frame
        self.retention = retention or Retention()

    @classmethod
    def open(
        cls,
        url: str,
        database: str,
        *,
        timeout_s: float = 5.0,
        retention: Retention | None = None,
        prefix: str = "",
    ) -> MongoAnalyticsStore:
        """An adapter for ``url`` and ``database`` (connects on first use); ``prefix``
        names collections beside the live ones (a replay's shadow)."""
        frame = MongoFrame.open(url, database, timeout_s=timeout_s, prefix=prefix)
        return cls(frame, retention)

    async def probe(self) -> None:
        """Reach the server and create the indexes."""
        await self.frame.probe()

    async def close(self) -> None:
        """Release connections."""
        await self.frame.close()

    async def checkpoint(self, stream: str, checkpoint: str) -> int | None:
        """The stored position of one consumer of one stream."""
        return await self.frame.checkpoint(stream, checkpoint)

    async def record_trades(self, batch: Batch[Any]) -> TradesApplied | None:
        """Apply trade events in one transaction with their checkpoint."""
        db = self.frame.db
        return await self.frame.in_transaction(batch, lambda s, b: apply_trades(db, s, b))

    async def record_candles(self, batch: Batch[Any]) -> int | None:
        """Apply closed candles in one transaction with their checkpoint."""
        db, retention = self.frame.db, self.retention
        return await self.frame.in_transaction(
            batch, lambda s, b: apply_candles(db, s, b, retention)
        )

    async def record_bots(self, batch: Batch[Any]) -> int | None:
        """Apply bot lifecycle events in one transaction with their checkpoint."""
        db = self.frame.db
        return await self.frame.in_transaction(batch, lambda s, b: apply_bots(db, s, b))
