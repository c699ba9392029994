"""Cold-tier candle files: Parquet (zstd) bytes in and out, and their retention. No I/O.

A file is the closed candles of one series and one period (``fleet_events.history``),
ordered by open time. The same candles always give the same bytes, so a rerun of the
compaction rewrites identical objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from fleet_events import CandleInterval, MarketCandle
from fleet_events.history import (
    COLD_COLUMNS,
    COLD_DECIMAL_PRECISION,
    COLD_DECIMAL_SCALE,
    COLD_PREFIX,
    cold_key,
    parse_cold_key,
)

DECIMAL = pa.decimal128(COLD_DECIMAL_PRECISION, COLD_DECIMAL_SCALE)
SCHEMA = pa.schema(
    [
        pa.field("open_time", pa.timestamp("ms", tz="UTC"), nullable=False),
        *(pa.field(name, DECIMAL, nullable=False) for name in COLD_COLUMNS[1:6]),
        pa.field("trade_count", pa.int64(), nullable=False),
    ]
)

Values = tuple[Decimal, Decimal, Decimal, Decimal, Decimal, int]
"""open, high, low, close, volume, trade_count of one candle."""

Rows = dict[datetime, Values]
"""A file's candles by open time."""


def values_of(candle: MarketCandle) -> Values:
    """The stored values of a candle event."""
    return (candle.open, candle.high, candle.low, candle.close, candle.volume, candle.trade_count)


def representable(candle: MarketCandle) -> bool:
    """Whether every decimal of ``candle`` fits decimal128(38, 18) without rounding."""
    whole = COLD_DECIMAL_PRECISION - COLD_DECIMAL_SCALE
    for value in values_of(candle)[:5]:
        assert isinstance(value, Decimal)
        _sign, digits, exponent = value.as_tuple()
        assert isinstance(exponent, int)
        if exponent < -COLD_DECIMAL_SCALE or len(digits) + exponent > whole:
            return False
    return True


def encode(rows: Rows) -> bytes:
    """The Parquet file (zstd) of ``rows``, ordered by open time."""
    times = sorted(rows)
    columns: list[Any] = [pa.array(times, type=SCHEMA.field("open_time").type)]
    for k in range(5):
        columns.append(pa.array([rows[t][k] for t in times], type=DECIMAL))
    columns.append(pa.array([rows[t][5] for t in times], type=pa.int64()))
    table = pa.Table.from_arrays(columns, schema=SCHEMA)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd", row_group_size=50_000)
    return bytes(sink.getvalue().to_pybytes())


def series_files(interval: CandleInterval, symbol: str, rows: Rows) -> dict[str, bytes]:
    """The files of a whole series at once, by key (to load history: benchmarks, tests)."""
    by_key: dict[str, Rows] = {}
    for t, values in rows.items():
        by_key.setdefault(cold_key(interval, symbol, t), {})[t] = values
    return {key: encode(part) for key, part in by_key.items()}


def decode(data: bytes) -> Rows:
    """The candles of a Parquet file ``encode`` wrote."""
    table = pq.read_table(pa.BufferReader(data), columns=list(COLD_COLUMNS))
    columns = [table.column(name).to_pylist() for name in COLD_COLUMNS]
    return {
        t.astimezone(UTC): (o, h, lo, c, v, int(n))
        for t, o, h, lo, c, v, n in zip(*columns, strict=True)
    }


@dataclass(frozen=True)
class ColdRetention:
    """Days the cold tier keeps a file after its period ends, by interval (seed 002)."""

    days_1m: int = 365
    days_wider: int = 5 * 365

    def days(self, interval: CandleInterval) -> int:
        """Days kept for ``interval``."""
        return self.days_1m if interval is CandleInterval.M1 else self.days_wider

    def expired(self, interval: CandleInterval, period_end: datetime, now: datetime) -> bool:
        """A file is deleted once every candle in it is older than its interval's retention."""
        return period_end + timedelta(days=self.days(interval)) <= now

    def expired_keys(self, keys: list[str], now: datetime) -> list[str]:
        """The cold files among ``keys`` past their retention."""
        out = []
        for key in keys:
            parsed = parse_cold_key(key)
            if parsed is not None and self.expired(parsed[0], parsed[3], now):
                out.append(key)
        return out

    def lifecycle(self) -> dict[str, Any]:
        """The same retention as S3 lifecycle rules (``put-bucket-lifecycle-configuration``).

        S3 counts days from an object's last write, and a period's file is last written
        after the period ends, so a rule never expires a file before backup-runner would.
        """
        rules = [
            {
                "ID": f"candles-{interval.value}",
                "Status": "Enabled",
                "Filter": {"Prefix": f"{COLD_PREFIX}interval={interval.value}/"},
                "Expiration": {"Days": self.days(interval)},
            }
            for interval in CandleInterval
        ]
        return {"Rules": rules}
