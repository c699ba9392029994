"""The stream archive as a chain of segments, and where retention cut its start.

Segments are keyed ``streams/<STREAM>/<first>-<last>.jsonl.zst`` (sequences zero-padded
so keys sort in stream order). The chain starts at sequence 1, or, once `fleet backup
prune` removed its oldest segments, right after the sequence recorded in the stream's
pruned marker ``streams/<STREAM>/pruned.json``. Every segment then starts at the
previous one's last + 1: anything else is a gap. A first segment that starts later than
the chain's start is a gap as well, so a segment deleted from the bucket is reported
while a pruned prefix is not.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime

from backup_runner.objects import ObjectMissing, ObjectStore

STREAMS_PREFIX = "streams/"
_DIGITS = 20
_SEGMENT = re.compile(r"/(\d+)-(\d+)\.jsonl\.zst$")
PRUNED_NAME = "pruned.json"


def segment_key(stream: str, first: int, last: int) -> str:
    """The key of the segment holding ``first``..``last`` of ``stream``."""
    return f"{STREAMS_PREFIX}{stream}/{first:0{_DIGITS}d}-{last:0{_DIGITS}d}.jsonl.zst"


def segment_range(key: str) -> tuple[int, int] | None:
    """The (first, last) sequences a segment key names; None for any other key."""
    match = _SEGMENT.search(key)
    return (int(match.group(1)), int(match.group(2))) if match else None


def archived_ranges(store: ObjectStore, stream: str) -> list[tuple[int, int]]:
    """The (first, last) sequence ranges of ``stream``'s segments, in order."""
    found = (segment_range(key) for key in store.keys(f"{STREAMS_PREFIX}{stream}/"))
    return sorted(r for r in found if r is not None)


def pruned_key(stream: str) -> str:
    """The key of ``stream``'s pruned marker."""
    return f"{STREAMS_PREFIX}{stream}/{PRUNED_NAME}"


@dataclass(frozen=True)
class PrunedMarker:
    """How far retention removed the start of one stream's archive."""

    stream: str
    through: int
    """The last sequence removed: the chain now starts at ``through`` + 1."""
    at: str
    """When (ISO 8601, UTC)."""
    keep_days: int


def read_pruned(store: ObjectStore, stream: str) -> PrunedMarker | None:
    """The stream's pruned marker; None when nothing was ever pruned.

    ``store`` must read stored bytes as they are: the marker is never encrypted.
    """
    try:
        raw = b"".join(store.get_chunks(pruned_key(stream)))
    except ObjectMissing:
        return None
    body = json.loads(raw)
    return PrunedMarker(
        stream, int(body["pruned_through"]), str(body["at"]), int(body["keep_days"])
    )


def pruned_through(store: ObjectStore, stream: str) -> int:
    """The last sequence pruned from ``stream``'s archive (0: none)."""
    marker = read_pruned(store, stream)
    return marker.through if marker is not None else 0


def write_pruned(
    store: ObjectStore, stream: str, through: int, at: datetime, keep_days: int
) -> None:
    """Record that ``stream``'s archive starts after ``through`` (written before any delete)."""
    body = {
        "stream": stream,
        "pruned_through": through,
        "at": at.isoformat(),
        "keep_days": keep_days,
    }
    store.put_bytes(pruned_key(stream), json.dumps(body, sort_keys=True).encode())


def live_ranges(ranges: list[tuple[int, int]], pruned: int) -> list[tuple[int, int]]:
    """The segments past the pruned point (one an interrupted prune left behind is not)."""
    return [r for r in ranges if r[1] > pruned]


def chain_gaps(stream: str, ranges: list[tuple[int, int]], pruned: int = 0) -> list[str]:
    """Every range missing from the chain that starts at ``pruned`` + 1: before the first
    segment, and wherever a segment does not start at the previous one's last + 1."""
    gaps = []
    expected = pruned + 1
    for first, last in live_ranges(ranges, pruned):
        if first > expected:
            gaps.append(f"{stream} {expected}-{first - 1} missing from the archive")
        expected = max(expected, last + 1)
    return gaps
