"""How long the warm tier keeps candles: per interval, as the architecture sets it (pure).

Seed 002's retention policy: 1m candles stay warm 30 days, 5m and wider 1 year. Each
``price_history`` document carries its own ``expire_at`` (open time + its interval's
retention) and a TTL index at 0 s removes it then: one collection, a retention per
interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from fleet_events import CandleInterval


@dataclass(frozen=True)
class Retention:
    """Days a candle stays in ``price_history`` after it opens, by interval."""

    minute_days: int = 30
    """1m candles."""
    wider_days: int = 365
    """Every interval wider than 1m."""

    def expire_at(self, interval: CandleInterval, open_time: datetime) -> datetime:
        """When a candle of ``interval`` that opened at ``open_time`` leaves the warm tier."""
        days = self.minute_days if interval is CandleInterval.M1 else self.wider_days
        return open_time + timedelta(days=days)
