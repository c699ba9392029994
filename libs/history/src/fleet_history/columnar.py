"""Cold-tier record batches as output text or Parquet rows, without a Python object per
candle: every column is formatted by Arrow's compute kernels.

The text is the row path's (``fleet candles`` rows built from ``Candle`` objects): open
times as ``2026-12-07T06:00:00Z``, decimals without the trailing zeros of scale 18, the
trade count as an integer and ``closed`` true (the cold tier holds closed candles only).
"""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc

_ONE = Decimal(1)
_SECONDS = pa.timestamp("s")
_TEXT_COLUMNS = ("open_time", "open", "high", "low", "close", "volume", "trade_count", "closed")


def plain(value: Decimal) -> Decimal:
    """A decimal without trailing zeros: 67000.100000000000000000 -> 67000.1."""
    shown = value.normalize()
    exponent = shown.as_tuple().exponent
    return shown.quantize(_ONE) if isinstance(exponent, int) and exponent > 0 else shown


def decimal_text(column: pa.Array) -> pa.Array:
    """A decimal128 column as the text ``str(plain(value))`` gives, trailing zeros dropped.

    Arrow writes a decimal of scale 18 with its 18 fraction digits; trimming the zeros and
    then a bare point is two kernels. Values Arrow writes in E notation (the tiniest, and
    zero) go through ``plain`` one by one.
    """
    text = pc.ascii_rtrim(pc.ascii_rtrim(pc.cast(column, pa.string()), "0"), ".")
    if pc.any(pc.match_substring(text, "E")).as_py():
        fixed = [s if "E" not in s else str(plain(Decimal(s))) for s in text.to_pylist()]
        text = pa.array(fixed, pa.string())
    return text


def time_text(column: pa.Array) -> pa.Array:
    """Open times (timestamp ms, UTC; whole seconds) as ``2026-12-07T06:00:00Z``.

    Cast without the time zone (the values are UTC already): Arrow formats a zoned
    timestamp through the time-zone database, some 30 times slower.
    """
    text = pc.cast(pc.cast(column, _SECONDS), pa.string())  # 2026-12-07 06:00:00
    return pc.binary_replace_slice(pc.binary_replace_slice(text, 10, 11, "T"), 19, 19, "Z")


def text_columns(batch: pa.RecordBatch) -> list[pa.Array]:
    """The output columns of a cold batch as text, in ``fleet candles`` order."""
    return [
        time_text(batch.column(0)),
        *(decimal_text(batch.column(k)) for k in range(1, 6)),
        pc.cast(batch.column(6), pa.string()),
    ]


def csv_batch(batch: pa.RecordBatch) -> pa.RecordBatch:
    """The CSV columns of a cold batch, every one as text (``closed``: ``True``)."""
    columns = text_columns(batch)
    columns.append(pa.array(["True"] * batch.num_rows, pa.string()))
    return pa.record_batch(columns, names=list(_TEXT_COLUMNS))


def json_lines(batch: pa.RecordBatch) -> pa.Array:
    """One JSON object per candle, each ending in a newline (as ``json.dumps`` writes them)."""
    t, o, h, low, c, v, n = text_columns(batch)
    return pc.binary_join_element_wise(
        '{"open_time": "', t, '", "open": "', o, '", "high": "', h, '", "low": "', low,
        '", "close": "', c, '", "volume": "', v, '", "trade_count": ', n,
        ', "closed": true}\n', "",
    )  # fmt: skip


def text_bytes(lines: pa.Array) -> memoryview:
    """The bytes of a string array's values back to back (no copy)."""
    _, offsets, data = lines.buffers()
    if data is None or offsets is None or not len(lines):
        return memoryview(b"")
    bounds = memoryview(offsets).cast("q" if pa.types.is_large_string(lines.type) else "i")
    return memoryview(data)[bounds[lines.offset] : bounds[lines.offset + len(lines)]]
