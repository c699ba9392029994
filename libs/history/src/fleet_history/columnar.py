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
_TWO_64 = float(2**64)
_EXACT_BELOW = float(2**48)
_PLAIN_DIGITS = 6
_WORDS: list[pa.Array] = [pa.array([], pa.int64()), pa.array([], pa.int64())]
_SECONDS = pa.timestamp("s")
_TEXT_COLUMNS = ("open_time", "open", "high", "low", "close", "volume", "trade_count", "closed")


def plain(value: Decimal) -> Decimal:
    """A decimal without trailing zeros: 67000.100000000000000000 -> 67000.1."""
    shown = value.normalize()
    exponent = shown.as_tuple().exponent
    return shown.quantize(_ONE) if isinstance(exponent, int) and exponent > 0 else shown


def decimal_text(column: pa.Array) -> pa.Array:
    """A decimal128 column as the text ``str(plain(value))`` gives, trailing zeros dropped.

    Most columns take ``_whole_text``; the rest (negative values, or more significant
    digits than a float can place exactly) take Arrow's decimal-to-string cast, about
    twice as slow.
    """
    text = _whole_text(column)
    return text if text is not None else _cast_text(column)


def _cast_text(column: pa.Array) -> pa.Array:
    """``decimal_text`` through Arrow's cast: it writes a decimal of scale 18 with its 18
    fraction digits; trimming the zeros and then a bare point is two kernels. Values it
    writes in E notation (the tiniest, and zero) go through ``plain`` one by one, from the
    cast's own text (trimming ``3.90000000E-10`` would cut the exponent's zero)."""
    cast = pc.cast(column, pa.string())
    text = pc.ascii_rtrim(pc.ascii_rtrim(cast, "0"), ".")
    if pc.any(pc.match_substring(cast, "E")).as_py():
        shown = zip(cast.to_pylist(), text.to_pylist(), strict=True)
        text = pa.array([t if "E" not in c else str(plain(Decimal(c))) for c, t in shown])
    return text


def _whole_text(column: pa.Array) -> pa.Array | None:
    """``decimal_text`` of a column of non-negative decimals through 64-bit integers, or
    None where that does not apply.

    Each value is scaled to a whole number of its column's fewest needed fraction digits
    ``d`` (67000.10 with d = 2: 6700010), which is formatted by the integer-to-string
    kernel and gets its point put back ``d`` places from the end. The unscaled 128-bit
    value is approximated as a float to divide it, and the quotient is exact when it
    stays under 2**48 (error below 1/8 before rounding) and its product by the divisor
    matches the value's low 64 bits (which also proves ``d`` digits suffice).
    """
    size = len(column)
    if not size or column.null_count or not pa.types.is_decimal128(column.type):
        return None
    scale = column.type.scale
    evens, odds = _word_indices(size)
    words = pa.Array.from_buffers(
        pa.int64(), 2 * size, [None, column.buffers()[1]], offset=2 * column.offset
    )
    low, high = pc.take(words, evens), pc.take(words, odds)  # little-endian halves
    unsigned_low = pc.cast(pc.cast(low, pa.uint64(), safe=False), pa.float64(), safe=False)
    value = pc.add(pc.multiply(pc.cast(high, pa.float64(), safe=False), _TWO_64), unsigned_low)
    least, most = (v.as_py() for v in pc.min_max(value).values())
    if least < 0:
        return None
    for digits in range(_digits_sampled(column, scale), scale + 1):
        unit = 10 ** (scale - digits)
        if most / unit >= _EXACT_BELOW:
            return None
        whole = pc.cast(pc.round(pc.divide(value, float(unit))), pa.int64(), safe=False)
        if pc.all(pc.equal(pc.multiply(whole, pa.scalar(unit, pa.int64())), low)).as_py():
            return _point_text(whole, digits)
    return None


def _point_text(whole: pa.Array, digits: int) -> pa.Array:
    """Whole numbers of 10**-digits as decimal text without trailing zeros."""
    text = pc.cast(whole, pa.string())
    if not digits:
        return text
    if pc.min(whole).as_py() < 10**digits:
        text = pc.utf8_lpad(text, digits + 1, "0")  # 5 -> 0.05 needs 005
    text = pc.binary_replace_slice(text, -digits, -digits, ".")
    text = pc.ascii_rtrim(pc.ascii_rtrim(text, "0"), ".")
    if digits > _PLAIN_DIGITS:
        # Python writes a decimal below 10**-6 in E notation (1E-7): those few one by one.
        tiny = pc.and_(pc.greater(whole, 0), pc.less(whole, 10 ** (digits - _PLAIN_DIGITS)))
        if pc.any(tiny).as_py():
            shown = zip(text.to_pylist(), tiny.to_pylist(), strict=True)
            text = pa.array([str(plain(Decimal(s))) if e else s for s, e in shown], pa.string())
    return text


def _digits_sampled(column: pa.Array, scale: int) -> int:
    """The most fraction digits among ~17 values spread over the column: where
    ``_whole_text`` starts looking for the column's."""
    step = max(1, len(column) // 16)
    digits = 0
    for k in {*range(0, len(column), step), len(column) - 1}:
        exponent = column[k].as_py().normalize().as_tuple().exponent
        digits = max(digits, -exponent if isinstance(exponent, int) else scale)
    return min(digits, scale)


def _word_indices(size: int) -> tuple[pa.Array, pa.Array]:
    """Indices of the low and the high 64-bit words of ``size`` decimal128 values."""
    if len(_WORDS[0]) < size:
        count = 2 * max(size, 16_384)
        _WORDS[:] = [pa.array(range(first, count, 2), pa.int64()) for first in (0, 1)]
    return _WORDS[0].slice(0, size), _WORDS[1].slice(0, size)


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
    columns.append(pa.repeat(pa.scalar("True", pa.string()), batch.num_rows))
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
