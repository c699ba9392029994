"""Retention of the stream archive: which segments `fleet backup prune` removes, and why
the others stay.

A segment goes only when all of these hold:

- it was written more than ``keep_days`` days ago (its S3 Last-Modified time, never
  earlier than its newest message, so the rule never removes a segment early);
- no kept PostgreSQL or MongoDB backup needs it: a backup's checkpoints are the stream
  positions its data reflects, and catching a restored store up needs every message
  after them, so a segment whose last sequence is above a kept checkpoint stays;
- every segment before it goes too: only a prefix of each stream's chain is removed,
  never a hole, and never past a gap (a missing segment stays reported);
- it is not the stream's newest segment (the chain continues from it).

Removing a prefix first records the new start of the chain in the stream's pruned
marker (``archive_chain``), then deletes the segments oldest first: a prune cut short
leaves segments the marker already counts as pruned, never a hole.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from backup_runner.archive_chain import (
    STREAMS_PREFIX,
    pruned_through,
    segment_range,
    write_pruned,
)
from backup_runner.manifest import Manifest
from backup_runner.objects import ObjectStore


@dataclass(frozen=True)
class Pin:
    """A kept backup's position on a stream: the archive must keep what follows ``seq``."""

    stream: str | None
    """None: the checkpoint names no stream the topology knows; it pins every stream."""
    seq: int
    why: str
    """``backup <id> (<position>)``."""
    position: str = ""
    """Which checkpoint: ``postgres.trading.checkpoints trade-recorder at 41``."""


@dataclass(frozen=True)
class SegmentFate:
    """One segment of the chain, whether it goes, and why."""

    stream: str
    first: int
    last: int
    key: str
    delete: bool
    why: str


@dataclass
class StreamPlan:
    """What pruning does to one stream's archive."""

    stream: str
    pruned_before: int
    segments: list[SegmentFate] = field(default_factory=list)

    @property
    def deleted(self) -> list[SegmentFate]:
        """The segments that go, oldest first."""
        return [s for s in self.segments if s.delete]

    @property
    def pruned_through(self) -> int:
        """Where the chain starts after pruning, minus one."""
        return max([self.pruned_before, *(s.last for s in self.deleted)])


def _seq(row: Mapping[str, Any]) -> int | None:
    value = row.get("stream_seq", row.get("seq"))
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _streams_of(row: Mapping[str, Any], durables: Mapping[str, Collection[str]]) -> list[str]:
    """The streams a checkpoint row is a position on ([]: unknown)."""
    stream = row.get("stream")
    if isinstance(stream, str) and stream:
        return [stream]
    ident = row.get("_id")
    if isinstance(ident, str) and "/" in ident:  # analytics-projector: "<STREAM>/<durable>"
        return [ident.split("/", 1)[0]]
    name = row.get("name", row.get("consumer"))
    return sorted(durables.get(name, ())) if isinstance(name, str) else []


def pins_of(manifests: Sequence[Manifest], durables: Mapping[str, Collection[str]]) -> list[Pin]:
    """The stream positions of ``manifests`` (the kept backups) that hold segments back.

    ``durables`` maps a durable (checkpoint) name to its streams (streams.yaml): a
    PostgreSQL checkpoint row names only its durable.
    """
    pins: list[Pin] = []
    for manifest in manifests:
        if manifest.target == "stream":
            continue  # its segments are the archive itself; they follow this retention
        for name, rows in manifest.positions.items():
            if not name.endswith(".checkpoints") or not isinstance(rows, list):
                continue
            for row in rows:
                if not isinstance(row, dict) or (seq := _seq(row)) is None:
                    continue
                label = row.get("name", row.get("consumer", row.get("_id", "?")))
                position = f"{name} {label} at {seq}"
                why = f"backup {manifest.backup_id} ({position})"
                streams: list[str | None] = [*_streams_of(row, durables)] or [None]
                pins.extend(Pin(s, seq, why, position) for s in streams)
    return pins


def plan_stream(
    stream: str,
    segments: Sequence[tuple[int, int, str, datetime]],
    pruned_before: int,
    pins: Sequence[Pin],
    cutoff: datetime,
    keep_days: int,
) -> StreamPlan:
    """Decide each of ``stream``'s segments ((first, last, key, written), any order)."""
    plan = StreamPlan(stream, pruned_before)
    ordered = sorted(segments)
    binding = min(
        (p for p in pins if p.stream in (stream, None)), key=lambda p: p.seq, default=None
    )
    expected = pruned_before + 1
    held = False  # a segment stays: every later one stays too (a prefix only)
    for n, (first, last, key, written) in enumerate(ordered):
        if last <= pruned_before:
            why = f"left by an interrupted prune (the archive starts after {pruned_before})"
            plan.segments.append(SegmentFate(stream, first, last, key, True, why))
            continue
        stays = None
        if first > expected:
            stays = (
                f"after a gap ({stream} {expected}-{first - 1} missing from the archive): "
                "pruning never passes a hole"
            )
        elif n == len(ordered) - 1:
            stays = "the newest segment: archiving continues from it"
        elif written > cutoff:
            stays = f"written within the last {keep_days} days"
        elif binding is not None and last > binding.seq:
            stays = f"needed by {binding.why}"
        elif held:
            stays = "follows a segment that stays: only the oldest segments go, never a hole"
        expected = max(expected, last + 1)
        if stays is not None:
            held = True
            plan.segments.append(SegmentFate(stream, first, last, key, False, stays))
        else:
            why = f"written more than {keep_days} days ago, no kept backup needs it"
            plan.segments.append(SegmentFate(stream, first, last, key, True, why))
    return plan


def plan_archive(
    store: ObjectStore,
    kept: Sequence[Manifest],
    durables: Mapping[str, Collection[str]],
    *,
    keep_days: int,
    now: datetime,
) -> list[StreamPlan]:
    """The plan for every archived stream in ``store`` (stored bytes, never decrypted)."""
    by_stream: dict[str, list[tuple[int, int, str, datetime]]] = {}
    for key, written in store.modified(STREAMS_PREFIX).items():
        found = segment_range(key)
        if found is not None:
            stream = key.removeprefix(STREAMS_PREFIX).split("/", 1)[0]
            by_stream.setdefault(stream, []).append((*found, key, written))
    pins = pins_of(kept, durables)
    cutoff = now - timedelta(days=keep_days)
    return [
        plan_stream(stream, segments, pruned_through(store, stream), pins, cutoff, keep_days)
        for stream, segments in sorted(by_stream.items())
    ]


def apply_plan(store: ObjectStore, plan: StreamPlan, *, now: datetime, keep_days: int) -> int:
    """Record the chain's new start, then delete the plan's segments oldest first."""
    doomed = plan.deleted
    if not doomed:
        return 0
    if plan.pruned_through > plan.pruned_before:
        write_pruned(store, plan.stream, plan.pruned_through, now, keep_days)
    for fate in doomed:
        store.delete(fate.key)
    return len(doomed)


def pruned_past(
    store: ObjectStore, manifest: Manifest, durables: Mapping[str, Collection[str]]
) -> list[str]:
    """For a restored backup: each position the archive no longer reaches back to.

    Prune never removes what a kept backup needs, but a backup made after a prune can
    hold a position that lagged behind it.
    """
    notes = []
    marks: dict[str, int] = {}
    for pin in pins_of([manifest], durables):
        if pin.stream is None:
            continue
        if pin.stream not in marks:
            marks[pin.stream] = pruned_through(store, pin.stream)
        if pin.seq < marks[pin.stream]:
            notes.append(
                f"the archive of {pin.stream} starts at {marks[pin.stream] + 1} (retention "
                f"pruned it): catching up {pin.position} needs "
                f"{pin.stream} {pin.seq + 1}-{marks[pin.stream]} from the stream itself"
            )
    return notes
