"""Durations (`30s`, `72h`, `365d`) and sizes (`512MiB`) as written in streams.yaml."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_SIZE_RE = re.compile(r"^\s*(\d+)\s*(B|KiB|MiB|GiB|TiB|KB|MB|GB|TB)?\s*$")
_SIZE_UNITS = {
    "B": 1,
    "KiB": 1024,
    "MiB": 1024**2,
    "GiB": 1024**3,
    "TiB": 1024**4,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
    "TB": 1000**4,
}
UNLIMITED = "unlimited"


def parse_duration(value: object) -> float:
    """Seconds from `500ms`, `30s`, `5m`, `72h`, `365d` or `2w`; a bare number is seconds."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like 30s or 72h, got {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"a duration cannot be negative, got {value!r}")
        return float(value)
    if isinstance(value, str):
        match = _DURATION_RE.match(value)
        if match:
            return float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    raise ValueError(f"expected a duration like 30s, 5m, 72h or 365d, got {value!r}")


def parse_size(value: object) -> int:
    """Bytes from `512MiB`, `1GiB`, `64KiB`, a bare integer, or `unlimited` (-1)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a size like 512MiB, got {value!r}")
    if isinstance(value, int):
        if value < -1:
            raise ValueError(f"a size cannot be below -1 (unlimited), got {value!r}")
        return value
    if isinstance(value, str):
        if value.strip() == UNLIMITED:
            return -1
        match = _SIZE_RE.match(value)
        if match:
            return int(match.group(1)) * _SIZE_UNITS[match.group(2) or "B"]
    raise ValueError(f"expected a size like 512MiB, 10GiB or unlimited, got {value!r}")


def parse_count(value: object) -> int:
    """A message count: a non-negative integer or `unlimited` (-1)."""
    if isinstance(value, str) and value.strip() == UNLIMITED:
        return -1
    if isinstance(value, int) and not isinstance(value, bool) and value >= -1:
        return value
    raise ValueError(f"expected a count (integer) or unlimited, got {value!r}")


def format_duration(seconds: float) -> str:
    """A short exact spelling of a duration: 259200 -> `72h`, 90 -> `90s`, 604800 -> `7d`."""
    if seconds == 0:
        return "0s"
    # Days only from a week up, so operators read `72h -> 96h` the way they wrote it.
    if seconds >= 7 * 86400 and seconds % 86400 == 0:
        return f"{int(seconds // 86400)}d"
    for unit in ("h", "m", "s"):
        size = _DURATION_UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{round(seconds * 1000)}ms"


def format_size(size: int) -> str:
    """The shortest exact binary spelling of a byte size: 536870912 -> `512MiB`."""
    if size < 0:
        return UNLIMITED
    for unit in ("TiB", "GiB", "MiB", "KiB"):
        scale = _SIZE_UNITS[unit]
        if size >= scale and size % scale == 0:
            return f"{size // scale}{unit}"
    return f"{size}B"


def format_count(count: int) -> str:
    """A count as written in the file: -1 is `unlimited`."""
    return UNLIMITED if count < 0 else str(count)


def _schema(pattern: str, description: str, *, number: bool = True) -> dict[str, Any]:
    choices: list[dict[str, Any]] = [{"type": "string", "pattern": pattern}]
    if number:
        choices.append({"type": "number"})
    return {"anyOf": choices, "description": description}


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(_schema(_DURATION_RE.pattern, "duration: 30s, 5m, 72h, 365d; number = s")),
]
Size = Annotated[
    int,
    BeforeValidator(parse_size),
    PlainSerializer(format_size, return_type=str),
    WithJsonSchema(_schema(r"^(\d+\s*(B|KiB|MiB|GiB|TiB|KB|MB|GB|TB)?|unlimited)$", "size")),
]
Count = Annotated[
    int,
    BeforeValidator(parse_count),
    PlainSerializer(format_count, return_type=str),
    WithJsonSchema(_schema(r"^unlimited$", "count: integer, or unlimited")),
]
