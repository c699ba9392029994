"""Durations, sizes and subject matching: the pure pieces the checks and diffs rely on."""

from __future__ import annotations

import pytest

from fleet_runtime.topology.subjects import covers, overlaps, subject_problem
from fleet_runtime.topology.units import format_duration, format_size, parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("72h", 259200), ("365d", 31536000), ("500ms", 0.5), (90, 90)],
)
def test_parse_duration(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["3 days", "72", "-1s", "h", True, -5])
def test_parse_duration_rejects(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


def test_sizes_round_trip() -> None:
    assert parse_size("512MiB") == 512 * 1024**2
    assert parse_size("1GB") == 10**9
    assert parse_size("unlimited") == -1
    assert format_size(512 * 1024**2) == "512MiB"
    assert format_size(-1) == "unlimited"
    assert format_duration(72 * 3600) == "72h"
    assert format_duration(365 * 86400) == "365d"
    with pytest.raises(ValueError, match="size"):
        parse_size("12 gigs")


def test_covers_and_overlaps() -> None:
    assert covers("trade.>", "trade.executed.*")
    assert covers("trade.*.*", "trade.executed.bot1")
    assert not covers("trade.*.*", "trade.>")
    assert not covers("trade.>", "trade")
    assert not covers("trade.>", ">")
    assert overlaps("trade.>", "*.executed.x")
    assert overlaps(">", "bot.created")
    assert not overlaps("trade.>", "trade")
    assert not overlaps("market.tick.*", "market.candle.>")
    assert subject_problem("trade.>.x") is not None
    assert subject_problem("trade..x") is not None
    assert subject_problem("trade.exec*") is not None
    assert subject_problem("trade.*.>") is None
