"""The cold tier: backup-runner's Parquet files in S3, one per series and period.

Only the files of the periods a range touches are opened (``fleet_events.history`` names
them), one at a time, so memory holds one file (a month of 1m candles at most). A file
that is missing between two stored periods of the series, or that does not read, is a
gap: recorded with its time range in ``gaps``, never skipped in silence. Periods before
the first stored file or after the last are simply outside the tier (retention, or not
compacted yet).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from fleet_events import CandleInterval
from fleet_events.history import (
    COLD_COLUMNS,
    cold_key,
    cold_periods,
    parse_cold_key,
    series_prefix,
)
from fleet_history.model import Candle, Gap

_BATCH = 10_000
_ONE = Decimal(1)


def plain(value: Decimal) -> Decimal:
    """A decimal without trailing zeros: 67000.100000000000000000 -> 67000.1."""
    shown = value.normalize()
    exponent = shown.as_tuple().exponent
    return shown.quantize(_ONE) if isinstance(exponent, int) and exponent > 0 else shown


def _decimals(column: pa.Array) -> list[Decimal]:
    """A decimal128 column as Python decimals without the trailing zeros of scale 18.

    The zeros go in Arrow (a Python loop of ``plain`` costs several times more); Arrow
    writes the tiniest values in E notation, which ``plain`` handles.
    """
    text = pc.cast(column, pa.string())
    text = pc.replace_substring_regex(text, r"(\.[0-9]*?)0+$", r"\1")
    text = pc.replace_substring_regex(text, r"\.$", "")
    return [Decimal(s) if "E" not in s else plain(Decimal(s)) for s in text.to_pylist()]


def s3_filesystem(
    endpoint: str, access_key: str, secret_key: str, region: str = "us-east-1"
) -> pafs.S3FileSystem:
    """A pyarrow S3 filesystem on ``endpoint`` (``http://host:port``, ``https://…`` or
    ``host:port``, which means http)."""
    scheme, _, address = endpoint.rpartition("://")
    return pafs.S3FileSystem(
        endpoint_override=address,
        scheme=scheme or "http",
        access_key=access_key,
        secret_key=secret_key,
        region=region,
        connect_timeout=5,
        request_timeout=30,
    )


class ParquetCandles:
    """Reads ``history/candles/interval=…/symbol=…/<period>.parquet`` under ``bucket``."""

    name = "cold (S3 Parquet)"

    def __init__(self, filesystem: pafs.FileSystem, bucket: str) -> None:
        self._fs = filesystem
        self._bucket = bucket.strip("/")
        self.gaps: list[Gap] = []

    def _stored(self, symbol: str, interval: CandleInterval) -> set[str]:
        folder = f"{self._bucket}/{series_prefix(interval, symbol)}"
        found = self._fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
        bucket = f"{self._bucket}/"
        return {
            info.path.removeprefix(bucket)
            for info in found
            if info.type == pafs.FileType.File and info.path.endswith(".parquet")
        }

    def _open(self, key: str) -> pq.ParquetFile:
        source = self._fs.open_input_file(f"{self._bucket}/{key}")
        return pq.ParquetFile(source)

    def _batches(self, key: str) -> Iterator[list[list[Any]]]:
        """The file's rows, ``_BATCH`` at a time, as Python columns (memory: one batch)."""
        for batch in self._open(key).iter_batches(_BATCH, columns=list(COLD_COLUMNS)):
            columns: list[list[Any]] = [batch.column(0).to_pylist()]
            columns += [_decimals(batch.column(k)) for k in range(1, 6)]
            columns.append(batch.column(6).to_pylist())
            yield columns

    async def candles(
        self, symbol: str, interval: CandleInterval, start: datetime, end: datetime
    ) -> AsyncIterator[Candle]:
        """The stored candles opened in [start, end), file by file."""
        stored = await asyncio.to_thread(self._stored, symbol, interval)
        starts = sorted(p[2] for p in map(parse_cold_key, stored) if p is not None)
        for first, stop in cold_periods(interval, start, end):
            key = cold_key(interval, symbol, first)
            low, high = max(first, start), min(stop, end)
            if key not in stored:
                if starts and starts[0] < first and starts[-1] > first:
                    self.gaps.append(Gap(self.name, low, high, f"{key} is missing"))
                continue
            batches = self._batches(key)
            while True:
                try:
                    columns = await asyncio.to_thread(next, batches, None)
                except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
                    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                    self.gaps.append(Gap(self.name, low, high, f"{key} is unreadable: {reason}"))
                    break
                if columns is None:
                    break
                for t, o, h, lo, c, v, n in zip(*columns, strict=True):
                    at = t.astimezone(UTC)
                    if low <= at < high:
                        yield Candle(symbol, interval, at, o, h, lo, c, v, n)
