"""The checks before `fleet replay --from-archive` reads anything: archive and stream must meet."""

from __future__ import annotations

import pytest

from fleet_runtime.replay import ReplayRefused
from fleet_runtime.replay.archive import ArchiveExtent, archive_start


def test_an_archive_that_meets_the_stream_is_read_through_its_end() -> None:
    assert archive_start("TRADES", "trade.>", ArchiveExtent(1, 1800), first=1151) == 1800
    # The stream still holds everything and nothing is archived: the stream alone.
    assert archive_start("TRADES", "trade.>", ArchiveExtent(0, 0), first=1) == 0
    # Retention pruned the archive's start, but the stream still holds its first event.
    assert archive_start("TRADES", "trade.>", ArchiveExtent(501, 900, pruned_through=500), 1) == 0


@pytest.mark.parametrize(
    ("extent", "first", "message"),
    [
        (ArchiveExtent(0, 0), 40, "stream TRADES no longer holds sequences 1-39 and the archive"),
        (
            ArchiveExtent(1, 900, gaps=["TRADES 11-20 missing from the archive"]),
            5,
            "the archive cannot rebuild TRADES: TRADES 11-20 missing from the archive",
        ),
        (ArchiveExtent(31, 900), 500, "TRADES 1-30 missing from the archive"),
        (
            ArchiveExtent(1, 900),
            1000,
            "TRADES 901-999 is in neither the archive (it ends at 900) nor the stream "
            "(it starts at 1000)",
        ),
        (
            ArchiveExtent(501, 900, pruned_through=500),
            700,
            "the archive cannot rebuild TRADES from its first event: retention pruned it "
            "through sequence 500, its earliest available sequence is 501 (the stream starts "
            "at 700)",
        ),
        (
            # A segment deleted after the pruned point is still a hole, not retention.
            ArchiveExtent(501, 900, ["TRADES 501-600 missing from the archive"], None, 500),
            700,
            "the archive cannot rebuild TRADES: TRADES 501-600 missing from the archive",
        ),
        (
            ArchiveExtent(1, 900, subjects=["trade.executed.>"]),
            10,
            "the archive of TRADES holds trade.executed.> only; the replay reads trade.>",
        ),
    ],
)
def test_what_the_archive_cannot_rebuild_is_refused_naming_the_range(
    extent: ArchiveExtent, first: int, message: str
) -> None:
    with pytest.raises(ReplayRefused) as refused:
        archive_start("TRADES", "trade.>", extent, first=first)
    assert message in str(refused.value)
    assert refused.value.fix
