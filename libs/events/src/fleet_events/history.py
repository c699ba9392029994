"""Where the cold market-history tier keeps candles: one Parquet file per period.

The contract between backup-runner, which writes the files, and every reader (the
``fleet_history`` library, pyarrow, DuckDB, polars). Keys are hive-partitioned so a
dataset reader finds ``interval`` and ``symbol`` in the path:

    history/candles/interval=1m/symbol=BTCUSDT/2026-12.parquet   (1m: one file a month)
    history/candles/interval=1h/symbol=BTCUSDT/2026.parquet      (wider: one file a year)

A file holds the closed candles that opened in its period, ordered by open time, with
the columns ``COLD_COLUMNS``. Pure: no I/O.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from .intervals import CandleInterval

COLD_PREFIX = "history/candles/"
COLD_STATE_KEY = f"{COLD_PREFIX}_compacted.json"
"""backup-runner's position in the stream archive (a ``_`` name: dataset readers skip it)."""

COLD_COLUMNS = ("open_time", "open", "high", "low", "close", "volume", "trade_count")
"""open_time: timestamp[ms, UTC]; prices and volume: decimal128(38, 18); trade_count: int64."""

COLD_DECIMAL_PRECISION = 38
COLD_DECIMAL_SCALE = 18

_KEY = re.compile(
    r"^history/candles/interval=(?P<interval>[^/]+)/symbol=(?P<symbol>[^/]+)/"
    r"(?P<year>\d{4})(?:-(?P<month>\d{2}))?\.parquet$"
)


def monthly(interval: CandleInterval) -> bool:
    """1m candles are filed by month (43,200 rows at most), wider ones by year."""
    return interval is CandleInterval.M1


def cold_period(interval: CandleInterval, moment: datetime) -> tuple[datetime, datetime]:
    """The [start, end) of the file period that holds a candle opened at ``moment``.

    A 1w candle belongs to the year in which it opens (a week can straddle New Year).
    """
    moment = moment.astimezone(UTC)
    if monthly(interval):
        start = datetime(moment.year, moment.month, 1, tzinfo=UTC)
        end = (
            datetime(moment.year + 1, 1, 1, tzinfo=UTC)
            if moment.month == 12
            else datetime(moment.year, moment.month + 1, 1, tzinfo=UTC)
        )
        return start, end
    return datetime(moment.year, 1, 1, tzinfo=UTC), datetime(moment.year + 1, 1, 1, tzinfo=UTC)


def series_prefix(interval: CandleInterval, symbol: str) -> str:
    """The folder of one series' files."""
    return f"{COLD_PREFIX}interval={interval.value}/symbol={symbol}/"


def cold_key(interval: CandleInterval, symbol: str, moment: datetime) -> str:
    """The key of the file that holds the candle of ``symbol`` opened at ``moment``."""
    start, _ = cold_period(interval, moment)
    name = f"{start:%Y-%m}" if monthly(interval) else f"{start:%Y}"
    return f"{series_prefix(interval, symbol)}{name}.parquet"


def cold_periods(
    interval: CandleInterval, start: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    """The file periods that hold candles opened in [start, end), oldest first."""
    periods = []
    at = start
    while at < end:
        period = cold_period(interval, at)
        periods.append(period)
        at = period[1]
    return periods


def parse_cold_key(key: str) -> tuple[CandleInterval, str, datetime, datetime] | None:
    """(interval, symbol, period start, period end) of a cold file key; None for others."""
    match = _KEY.match(key)
    if match is None:
        return None
    try:
        interval = CandleInterval(match["interval"])
    except ValueError:
        return None
    if monthly(interval) != (match["month"] is not None):
        return None
    month = int(match["month"] or 1)
    if not 1 <= month <= 12:
        return None
    start, end = cold_period(interval, datetime(int(match["year"]), month, 1, tzinfo=UTC))
    return interval, match["symbol"], start, end
