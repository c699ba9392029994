"""How values are written to MongoDB documents: Decimal128 amounts, UTC days (pure).

Amounts in the read models are ``Decimal128``. A value with more than the 34 significant
digits Decimal128 holds is rounded half-even to 34 (documented in docs/analytics.md);
the exact running sums a fold continues from are kept as decimal strings instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Context, Decimal, Inexact

from bson.decimal128 import Decimal128
from fleet_trading.metrics import Figure

_D128 = Context(prec=34, rounding=ROUND_HALF_EVEN)


def d128(value: Decimal) -> Decimal128:
    """``value`` as Decimal128: exact when it fits, else rounded half-even to 34 digits."""
    try:
        return Decimal128(value)
    except Inexact:
        return Decimal128(_D128.plus(value))


def figure(value: Figure) -> Decimal128 | int | None:
    """A metric as stored: Decimal128 for decimals, ints and None as they are."""
    if isinstance(value, Decimal):
        return d128(value)
    return value


def figures(values: Mapping[str, Figure]) -> dict[str, Decimal128 | int | None]:
    """Every metric of a mapping as stored."""
    return {name: figure(value) for name, value in values.items()}


def day_of(moment: datetime) -> str:
    """The UTC day of ``moment`` as ``YYYY-MM-DD``."""
    return moment.astimezone(UTC).date().isoformat()


def day_start(day: str) -> datetime:
    """Midnight UTC at the start of ``day`` (``YYYY-MM-DD``)."""
    return datetime.combine(date.fromisoformat(day), time(0), tzinfo=UTC)


def next_day(day: str) -> str:
    """The day after ``day``."""
    return (date.fromisoformat(day) + timedelta(days=1)).isoformat()
