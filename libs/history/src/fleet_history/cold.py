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
from fleet_history.columnar import decimal_text
from fleet_history.model import Candle, Gap

_BATCH = 10_000
_TIME = pa.timestamp("ms", tz="UTC")


def _decimals(column: pa.Array) -> list[Decimal]:
    """A decimal128 column as Python decimals without the trailing zeros of scale 18."""
    return [Decimal(s) for s in decimal_text(column).to_pylist()]


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
        # pre_buffer: the columns of the row groups read come in one coalesced request,
        # not one ranged GET per column chunk (half the read time on SeaweedFS).
        return pq.ParquetFile(source, pre_buffer=True)

    def _file_batches(self, key: str, low: datetime, high: datetime) -> Iterator[pa.RecordBatch]:
        """The file's rows opened in [low, high), ``_BATCH`` at a time (memory: one batch);
        row groups whose open times lie outside are not read."""
        parquet = self._open(key)
        meta = parquet.metadata
        groups = []
        for g in range(meta.num_row_groups):
            stats = meta.row_group(g).column(0).statistics
            if stats is not None and stats.has_min_max:
                first, last = (_utc(stats.min), _utc(stats.max))
                if last < low or first >= high:
                    continue
            groups.append(g)
        if not groups:
            return
        bounds = pa.scalar(low, _TIME), pa.scalar(high, _TIME)
        low_ms, high_ms = bounds[0].value, bounds[1].value
        for batch in parquet.iter_batches(_BATCH, row_groups=groups, columns=list(COLD_COLUMNS)):
            times = batch.column(0)
            if len(times) and times[0].value >= low_ms and times[-1].value < high_ms:
                yield batch  # sorted by open time: all inside, nothing to filter
                continue
            inside = pc.and_(pc.greater_equal(times, bounds[0]), pc.less(times, bounds[1]))
            yield batch.filter(inside)

    async def batches(
        self, symbol: str, interval: CandleInterval, start: datetime, end: datetime
    ) -> AsyncIterator[pa.RecordBatch]:
        """The stored candles opened in [start, end) as record batches of ``COLD_COLUMNS``
        (oldest first, none empty), file by file; missing and unreadable files are gaps."""
        stored = await asyncio.to_thread(self._stored, symbol, interval)
        starts = sorted(p[2] for p in map(parse_cold_key, stored) if p is not None)
        for first, stop in cold_periods(interval, start, end):
            key = cold_key(interval, symbol, first)
            low, high = max(first, start), min(stop, end)
            if key not in stored:
                if starts and starts[0] < first and starts[-1] > first:
                    self.gaps.append(Gap(self.name, low, high, f"{key} is missing"))
                continue
            batches = self._file_batches(key, low, high)
            while True:
                try:
                    batch = await asyncio.to_thread(next, batches, None)
                except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
                    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                    self.gaps.append(Gap(self.name, low, high, f"{key} is unreadable: {reason}"))
                    break
                if batch is None:
                    break
                if batch.num_rows:
                    yield batch

    async def candles(
        self, symbol: str, interval: CandleInterval, start: datetime, end: datetime
    ) -> AsyncIterator[Candle]:
        """The stored candles opened in [start, end), file by file."""
        async for batch in self.batches(symbol, interval, start, end):
            times = batch.column(0).to_pylist()
            prices = [_decimals(batch.column(k)) for k in range(1, 6)]
            counts = batch.column(6).to_pylist()
            for t, o, h, lo, c, v, n in zip(times, *prices, counts, strict=True):
                yield Candle(symbol, interval, t.astimezone(UTC), o, h, lo, c, v, n)


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
