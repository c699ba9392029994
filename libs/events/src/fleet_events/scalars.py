"""Annotated scalar types shared by every payload: decimals, UTC timestamps, subject tokens."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import Field, GetPydanticSchema, WithJsonSchema
from pydantic_core import core_schema

DECIMAL_NUMBER_MESSAGE = 'must be a decimal string, e.g. "101.25", not a JSON number'

# The scalar types below are built from pydantic-core schemas rather than Python
# validator functions: they run on every field of every decoded message, and a Python
# call per field roughly halves the decode rate.


def _decimal_schema(**constraints: Any) -> core_schema.CoreSchema:
    """Core schema of a finite Decimal that must arrive as a string (or a Decimal)."""
    # A JSON number has already been through a binary float in most producers, so
    # "0.1" may arrive as 0.1000000000000000055...; only a string carries the exact
    # value. Ints are refused too so that the wire has exactly one spelling.
    finite = core_schema.decimal_schema(allow_inf_nan=False, **constraints)
    json_input = core_schema.custom_error_schema(
        core_schema.str_schema(strict=True),
        "decimal_not_string",
        custom_error_message=DECIMAL_NUMBER_MESSAGE,
    )
    python_input = core_schema.custom_error_schema(
        core_schema.union_schema(
            [core_schema.is_instance_schema(Decimal), core_schema.str_schema(strict=True)]
        ),
        "decimal_not_string",
        custom_error_message=DECIMAL_NUMBER_MESSAGE,
    )
    return core_schema.json_or_python_schema(
        json_schema=core_schema.chain_schema([json_input, finite]),
        python_schema=core_schema.chain_schema([python_input, finite]),
        serialization=core_schema.to_string_ser_schema(when_used="json"),
    )


def _decimal_json_schema(description: str) -> dict[str, Any]:
    return {
        "type": "string",
        "pattern": r"^-?\d+(\.\d+)?([eE][-+]?\d+)?$",
        "description": description,
        "examples": ["101.25"],
    }


DecimalStr = Annotated[
    Decimal,
    GetPydanticSchema(lambda _source, _handler: _decimal_schema()),
    WithJsonSchema(_decimal_json_schema("Exact decimal as a string; JSON numbers are rejected.")),
]
"""A finite ``Decimal`` that travels as a JSON string; JSON numbers are rejected.

Also accepts a ``Decimal`` or a ``str`` from Python, never an ``int`` or ``float``.
Constraints (``gt``…) cannot be added with ``Field``: use the variants below.
"""

PositiveDecimal = Annotated[
    Decimal,
    GetPydanticSchema(lambda _source, _handler: _decimal_schema(gt=0)),
    WithJsonSchema(_decimal_json_schema("Exact decimal > 0 as a string.")),
]
"""A ``DecimalStr`` strictly greater than zero (prices, traded quantities)."""

NonNegativeDecimal = Annotated[
    Decimal,
    GetPydanticSchema(lambda _source, _handler: _decimal_schema(ge=0)),
    WithJsonSchema(_decimal_json_schema("Exact decimal >= 0 as a string.")),
]
"""A ``DecimalStr`` greater than or equal to zero (fees, volumes)."""


AWARE_DATETIME_MESSAGE = (
    'must be a timezone-aware ISO-8601 datetime, e.g. "2024-01-01T00:00:00Z" '
    "(naive datetimes are rejected)"
)


def _to_utc(value: datetime) -> datetime:
    """Normalise an aware datetime to UTC so the wire always carries ``Z`` timestamps."""
    return value.astimezone(UTC)


def _utc_datetime_schema() -> core_schema.CoreSchema:
    # UTC input (the normal case: this package always writes "Z") is accepted by the
    # core validator alone; any other offset is converted by a Python function.
    utc = core_schema.datetime_schema(tz_constraint=0)
    converted = core_schema.no_info_after_validator_function(
        _to_utc, core_schema.datetime_schema(tz_constraint="aware")
    )
    return core_schema.custom_error_schema(
        core_schema.union_schema([utc, converted], mode="left_to_right"),
        "aware_datetime",
        custom_error_message=AWARE_DATETIME_MESSAGE,
    )


UtcDatetime = Annotated[
    datetime,
    GetPydanticSchema(lambda _source, _handler: _utc_datetime_schema()),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
"""A timezone-aware datetime normalised to UTC; naive datetimes are rejected."""


_FORBIDDEN_TOKEN_CHARS = frozenset(".*>")


def check_subject_token(value: str) -> str:
    """Return ``value`` if it can be one NATS subject token, else raise ``ValueError``.

    A token must be non-empty and contain no ``.`` (token separator), no ``*`` or ``>``
    (wildcards) and no whitespace or control characters.
    """
    if not value:
        raise ValueError("must be a non-empty NATS subject token")
    for char in value:
        if char in _FORBIDDEN_TOKEN_CHARS:
            raise ValueError(
                f"{value!r} is not a valid NATS subject token: it contains {char!r} "
                "('.', '*' and '>' are reserved)"
            )
        if char.isspace() or not char.isprintable():
            raise ValueError(
                f"{value!r} is not a valid NATS subject token: it contains whitespace "
                "or a control character"
            )
    return value


SUBJECT_RULE_MESSAGE = (
    "must be a NATS subject token: non-empty, without '.', '*', '>', whitespace or "
    "control characters"
)

SubjectToken = Annotated[
    str,
    GetPydanticSchema(
        lambda _source, _handler: core_schema.custom_error_schema(
            # Same rule as check_subject_token, run by the core regex engine.
            core_schema.str_schema(pattern=r"^[^.*>\s\p{C}]+$"),
            "subject_token",
            custom_error_message=SUBJECT_RULE_MESSAGE,
        )
    ),
    WithJsonSchema({"type": "string", "pattern": r"^[^.*>\s]+$"}),
]
"""A string usable as one NATS subject token (ids and symbols that end up in subjects)."""

NonEmptyStr = Annotated[str, Field(min_length=1)]
"""A string with at least one character."""
