"""A candle series written out as Parquet, one row group at a time (flat memory)."""

from __future__ import annotations

from types import TracebackType
from typing import Any, BinaryIO, Self

import pyarrow as pa
import pyarrow.parquet as pq

from fleet_events.history import COLD_DECIMAL_PRECISION, COLD_DECIMAL_SCALE
from fleet_history.model import Candle, HistoryError

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
_NAMES = SCHEMA.names


class ParquetSink:
    """Writes candles to ``out`` as Parquet (zstd), the columns of the cold tier plus
    ``closed``; a row group every ``group_rows`` candles."""

    def __init__(self, out: BinaryIO, group_rows: int = 10_000) -> None:
        self._writer = pq.ParquetWriter(pa.PythonFile(out, mode="w"), SCHEMA, compression="zstd")
        self._group_rows = group_rows
        self._rows: list[list[Any]] = [[] for _ in _NAMES]

    def write(self, candle: Candle) -> None:
        """Add one candle (written when its row group is full)."""
        values = (
            candle.open_time,
            candle.open,
            candle.high,
            candle.low,
            candle.close,
            candle.volume,
            candle.trade_count,
            candle.closed,
        )
        for column, value in zip(self._rows, values, strict=True):
            column.append(value)
        if len(self._rows[0]) >= self._group_rows:
            self._flush()

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
        self._rows = [[] for _ in _NAMES]

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
