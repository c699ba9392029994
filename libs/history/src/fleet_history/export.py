"""Where a series goes: CSV, JSON lines or Parquet, written row by row (``write``, candles
from any tier) or batch by batch (``write_batch``, the cold tier's Arrow record batches,
which stay columnar). Memory holds one batch or one row group."""

from __future__ import annotations

import json
from types import TracebackType
from typing import Any, BinaryIO, Self

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from fleet_events.history import COLD_DECIMAL_PRECISION, COLD_DECIMAL_SCALE
from fleet_history.columnar import csv_batch, json_lines, text_bytes
from fleet_history.model import Candle, HistoryError

FIELDS = ["open_time", "open", "high", "low", "close", "volume", "trade_count", "closed"]
_DECIMAL = pa.decimal128(COLD_DECIMAL_PRECISION, COLD_DECIMAL_SCALE)
SCHEMA = pa.schema(
    [
        pa.field("open_time", pa.timestamp("ms", tz="UTC"), nullable=False),
        pa.field("open", _DECIMAL, nullable=False),
        pa.field("high", _DECIMAL, nullable=False),
        pa.field("low", _DECIMAL, nullable=False),
        pa.field("close", _DECIMAL, nullable=False),
        pa.field("volume", _DECIMAL, nullable=False),
        pa.field("trade_count", pa.int64(), nullable=False),
        pa.field("closed", pa.bool_(), nullable=False),
    ]
)
_TEXT = pa.schema([(name, pa.string()) for name in FIELDS])


def row(candle: Candle) -> dict[str, Any]:
    """A candle as output fields: times ISO 8601 with ``Z``, decimals as text."""
    return {
        "open_time": candle.open_time.isoformat().replace("+00:00", "Z"),
        "open": str(candle.open),
        "high": str(candle.high),
        "low": str(candle.low),
        "close": str(candle.close),
        "volume": str(candle.volume),
        "trade_count": candle.trade_count,
        "closed": candle.closed,
    }


class CsvSink:
    """CSV with a header line; cold batches go through pyarrow's CSV writer."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._writer: pacsv.CSVWriter | None = None
        out.write((",".join(FIELDS) + "\n").encode())

    def write(self, candle: Candle) -> None:
        """One line (values never need quoting: times, decimals, integers, booleans)."""
        self._end_batches()
        self._out.write((",".join(map(str, row(candle).values())) + "\n").encode())

    def write_batch(self, batch: pa.RecordBatch) -> None:
        """The lines of a cold batch."""
        if self._writer is None:
            options = pacsv.WriteOptions(include_header=False, quoting_style="none")
            sink = pa.PythonFile(self._out, mode="w")
            self._writer = pacsv.CSVWriter(sink, _TEXT, write_options=options)
        self._writer.write_batch(csv_batch(batch))

    def _end_batches(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def close(self) -> None:
        """Finish the output."""
        self._end_batches()
        self._out.flush()


class JsonSink:
    """One JSON object per line."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out

    def write(self, candle: Candle) -> None:
        """One line."""
        self._out.write((json.dumps(row(candle)) + "\n").encode())

    def write_batch(self, batch: pa.RecordBatch) -> None:
        """The lines of a cold batch, built by Arrow."""
        self._out.write(text_bytes(json_lines(batch)))

    def close(self) -> None:
        """Finish the output."""
        self._out.flush()


class ParquetSink:
    """Writes candles to ``out`` as Parquet (zstd), the columns of the cold tier plus
    ``closed``; a row group every ``group_rows`` candles (cold batches: one each)."""

    def __init__(self, out: BinaryIO, group_rows: int = 10_000) -> None:
        self._writer = pq.ParquetWriter(pa.PythonFile(out, mode="w"), SCHEMA, compression="zstd")
        self._group_rows = group_rows
        self._rows: list[list[Any]] = [[] for _ in FIELDS]

    def write(self, candle: Candle) -> None:
        """Add one candle (written when its row group is full)."""
        values = (candle.open_time, *candle.values, candle.closed)
        for column, value in zip(self._rows, values, strict=True):
            column.append(value)
        if len(self._rows[0]) >= self._group_rows:
            self._flush()

    def write_batch(self, batch: pa.RecordBatch) -> None:
        """A cold batch as it is, with ``closed`` true."""
        self._flush()
        closed = pa.repeat(pa.scalar(True, pa.bool_()), batch.num_rows)
        self._writer.write_batch(pa.record_batch([*batch.columns, closed], schema=SCHEMA))

    def _flush(self) -> None:
        if not self._rows[0]:
            return
        try:
            table = pa.Table.from_arrays(
                [pa.array(c, type=f.type) for c, f in zip(self._rows, SCHEMA, strict=True)],
                schema=SCHEMA,
            )
        except pa.ArrowInvalid as exc:
            raise HistoryError(
                f"a candle does not fit the Parquet columns (decimal128(38, 18)): {exc}",
                fix="export this range as --format csv or json, which keep every digit",
            ) from None
        self._writer.write_table(table)
        self._rows = [[] for _ in FIELDS]

    def close(self) -> None:
        """Write the last row group and the file footer."""
        self._flush()
        self._writer.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if kind is None:
            self.close()
        else:
            self._writer.close()
