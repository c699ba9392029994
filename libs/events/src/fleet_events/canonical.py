"""The exact text ``encode`` writes for a valid event, as regular-expression pieces.

A worker may read its hot event type with one regular expression instead of the
contract's validator (a "canonical lane"): the bytes ``encode`` writes for a valid event
of that type are matched field by field, in order, compact, with no string escapes, and
anything else goes to ``decode`` or ``decode_as``, which give the contract's verdict. The
pieces accept a subset of what the contract accepts, so a match is valid by construction
once the few checks a pattern cannot make are done (a positive decimal, a real date: see
``utc_second``). Each service holds its lane to the contract with generated and mutated
messages (``fleet_testing.mutations``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import lru_cache

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
"""A UUID as the encoder writes it: lower-case, hyphenated."""
TEXT = r'[^"\\\x00-\x1f\x7f]'
"""One character of a string without escapes or control characters."""
SUBJECT_WORD = r"[A-Za-z0-9_-]+"
"""A subject token of ASCII letters, digits, ``_`` and ``-`` (a subset of the contract's)."""
DECIMAL = r"(?:0|[1-9][0-9]*)(?:\.[0-9]+)?"
"""A decimal in plain notation without sign, leading zeros or exponent."""
DECIMAL_STR = DECIMAL + r"(?:E[+-][0-9]{1,6})?"
"""A decimal as ``str(Decimal)`` writes it, so as the encoder does: ``DECIMAL``, or with
an exponent (``1E-7``, ``0E-8``, ``1.5E+3``); the exponent is kept short enough that
``Decimal`` reads every match."""
SECOND = r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
"""A time to the second (``YYYY-MM-DDTHH:MM:SS``), checked by ``utc_second``."""
FRACTION = r"(?:\.(?!000000)([0-9]{6}))?"
"""The encoder's fraction of a second: six digits, only when not zero (one group)."""


def envelope(event_type: str, schema_version: int, data: str) -> re.Pattern[str]:
    """The pattern of a whole canonical message of ``event_type`` whose payload is ``data``.

    ``data`` matches the payload object's fields, without its braces. Groups 1-3 are the
    event id, the envelope time's second (``SECOND``) and its fraction (or None); the
    groups of ``data`` follow.
    """
    return re.compile(
        r'\{"id":"(' + UUID + r')","type":"' + re.escape(event_type) + r'",'
        r'"schema_version":' + str(schema_version) + r","
        r'"source":"' + TEXT + r'+","time":"(' + SECOND + r")" + FRACTION + r'Z",'
        r'"key":"' + SUBJECT_WORD + r'","correlation_id":(?:null|"' + UUID + r'"),'
        r'"causation_id":(?:null|"' + UUID + r'"),'
        r'"data":\{' + data + r"\}\}"
    )


def fullmatch(pattern: re.Pattern[str], raw: bytes) -> re.Match[str] | None:
    """The match of ``pattern`` on the whole of ``raw`` (UTF-8), or None."""
    try:
        return pattern.fullmatch(raw.decode())
    except UnicodeDecodeError:
        return None


@lru_cache(maxsize=8192)
def utc_second(text: str) -> datetime:
    """The UTC time of ``YYYY-MM-DDTHH:MM:SS``; ValueError if there is no such time."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)
