"""The cold tier's decimal columns as text: the same text as ``str(plain(value))``, the
row path's, on the integer path and on the cast path it falls back to."""

from __future__ import annotations

import random
from decimal import Decimal

import pyarrow as pa
import pytest

from fleet_history.columnar import _cast_text, _whole_text, decimal_text, plain

COLD = pa.decimal128(38, 18)


def _column(values: list[str]) -> pa.Array:
    return pa.array([Decimal(v) for v in values], COLD)


def _expected(values: list[str]) -> list[str]:
    return [str(plain(Decimal(v))) for v in values]


@pytest.mark.parametrize(
    "values",
    [
        ["67000.10", "67000", "0.5", "12.345678", "100", "10.10"],
        ["0", "0.000001", "0.0000001", "0.00000123", "0.00000000039", "1E-18"],
        ["1.000000001", "0.5", "20"],
        ["49999.99", "50000.01", "1E+3", "7"],
    ],
)
def test_integer_path_gives_the_row_paths_text(values: list[str]) -> None:
    column = _column(values)
    text = _whole_text(column)
    assert text is not None
    assert text.to_pylist() == _expected(values)
    assert decimal_text(column).to_pylist() == _cast_text(column).to_pylist()


@pytest.mark.parametrize(
    "values",
    [
        ["-1.5", "2"],  # negative
        ["99999999999999999999.123", "1"],  # beyond what a float places exactly
        ["123.456789012345678", "1"],  # 18 significant fraction digits
        ["0.00000000039", "7842261.96", "0"],  # E notation with an exponent ending in 0
    ],
)
def test_other_columns_fall_back_to_the_cast(values: list[str]) -> None:
    column = _column(values)
    assert _whole_text(column) is None
    assert decimal_text(column).to_pylist() == _expected(values)


def test_random_columns_and_slices_match() -> None:
    rng = random.Random(24)
    used = 0
    for _ in range(300):
        digits = rng.randint(0, 12)
        values = [
            str(Decimal(rng.randint(0, 10 ** rng.randint(1, 12))).scaleb(-rng.randint(0, digits)))
            for _ in range(rng.randint(1, 300))
        ]
        column = _column(values)
        cut = rng.randint(0, len(values) - 1)
        for part, expected in ((column, values), (column.slice(cut), values[cut:])):
            text = _whole_text(part)
            used += text is not None
            assert decimal_text(part).to_pylist() == _expected(expected)
            if text is not None:
                assert text.to_pylist() == _expected(expected)
    assert used > 50, "the integer path should serve many of these columns"


def test_a_null_or_other_type_is_not_the_integer_paths() -> None:
    assert _whole_text(pa.array([Decimal("1.5"), None], COLD)) is None
    assert _whole_text(pa.array([1.5], pa.float64())) is None
