"""Candle widths: the intervals of ``market.candle`` events and of every candle tier.

Apart from the payloads (no pydantic), so that readers of the market-history layout
(``fleet_events.history``) load only what they use.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum


class CandleInterval(StrEnum):
    """Candle widths the platform aggregates."""

    M1 = "1m"
    M5 = "5m"
    M15 = "15m"
    M30 = "30m"
    H1 = "1h"
    H4 = "4h"
    D1 = "1d"
    W1 = "1w"

    @property
    def duration(self) -> timedelta:
        """Return the width of one candle."""
        return _DURATIONS[self]

    @property
    def origin(self) -> timedelta:
        """Where periods start counting from the Unix epoch: weeks open on Mondays
        00:00 UTC (the epoch was a Thursday), every other width at the epoch."""
        return _MONDAY if self is CandleInterval.W1 else timedelta(0)


_DURATIONS = {
    CandleInterval.M1: timedelta(minutes=1),
    CandleInterval.M5: timedelta(minutes=5),
    CandleInterval.M15: timedelta(minutes=15),
    CandleInterval.M30: timedelta(minutes=30),
    CandleInterval.H1: timedelta(hours=1),
    CandleInterval.H4: timedelta(hours=4),
    CandleInterval.D1: timedelta(days=1),
    CandleInterval.W1: timedelta(weeks=1),
}
_MONDAY = timedelta(days=4)  # 1970-01-05, the first Monday after the epoch
