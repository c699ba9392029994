"""Replay past stream retention: the port a stream archive offers, and the checks before use.

A stream archive (backup-runner's segments in S3) holds each stream's messages from
sequence 1 (or from after the point its retention pruned it to) up to where it was last
archived. ``fleet replay WORKER --from-archive``
reads a lane's messages from the archive first and then the live stream from the
archive's end + 1; the two must meet, or nothing is done. The archive's format belongs
to the service that writes it: it provides a ``StreamArchive`` through
``WorkerSpec.archive``, so ``libs/`` never imports it.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

from fleet_runtime.errors import ConfigError
from fleet_runtime.replay.target import ReplayRefused
from fleet_runtime.topology.subjects import covered_by_any
from fleet_runtime.workers import WorkerSpec, discover_workers


@dataclass(frozen=True, slots=True)
class ArchivedMessage:
    """One message as the stream held it."""

    seq: int
    subject: str
    data: bytes
    headers: dict[str, str] | None = None


@dataclass(frozen=True)
class ArchiveExtent:
    """What the archive holds of one stream: sequences ``first``..``last`` (0, 0: nothing)."""

    first: int
    last: int
    gaps: Sequence[str] = ()
    """Ranges missing inside ``first``..``last``, as ``"<STREAM> <from>-<to> ..."``."""
    subjects: Sequence[str] | None = None
    """The subjects archived (None: every subject of the stream)."""
    pruned_through: int = 0
    """The last sequence retention removed from the archive's start (0: none): the archive
    then starts at ``pruned_through`` + 1 and no longer holds the first events."""


class StreamArchive(Protocol):
    """Read access to archived stream messages, in stream order."""

    description: str
    """Where the archive is, for messages (``s3 bucket tradefleet-backups``)."""

    async def extent(self, stream: str) -> ArchiveExtent:
        """The range of ``stream`` the archive holds, and its holes."""
        ...

    def messages(self, stream: str, through: int) -> AsyncIterator[Sequence[ArchivedMessage]]:
        """``stream``'s archived messages up to ``through``, a segment's worth at a time."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


ArchiveFactory = Callable[[Any], Awaitable[StreamArchive]]


def archive_provider() -> tuple[WorkerSpec, ArchiveFactory]:
    """The installed worker that offers a stream archive, with its factory."""
    providers = [spec for spec in discover_workers().values() if spec.archive is not None]
    if not providers:
        raise ConfigError(
            "no installed worker provides a stream archive",
            fix="install backup-runner (it archives the streams to S3) to replay --from-archive",
        )
    spec = providers[0]
    found = spec.archive
    if callable(found):
        return spec, cast("ArchiveFactory", found)
    assert found is not None
    module, _, attr = found.partition(":")
    factory: Any = getattr(importlib.import_module(module), attr)
    return spec, cast("ArchiveFactory", factory)


def archive_start(stream: str, subject: str, extent: ArchiveExtent, first: int) -> int:
    """The sequence the archive is read through (0: not needed), or a one-line refusal.

    ``first`` is the stream's oldest sequence now. The archive must be a chain from 1
    without holes, hold ``subject`` and reach at least ``first`` - 1. A stream that still
    holds its first event needs no archive, whatever the archive's retention removed.
    """
    if extent.pruned_through and first <= 1:
        return 0
    if extent.last == 0 and not extent.pruned_through:
        if first <= 1:
            return 0
        raise ReplayRefused(
            f"stream {stream} no longer holds sequences 1-{first - 1} and the archive holds "
            "nothing of it",
            fix="run a stream backup (`ops.backup.requested` target stream) before events expire",
        )
    if extent.gaps:
        raise ReplayRefused(
            f"the archive cannot rebuild {stream}: {extent.gaps[0]}",
            fix="put the missing segment back into the bucket (or replay without --from-archive "
            "while the stream still holds those sequences)",
        )
    if extent.pruned_through:
        raise ReplayRefused(
            f"the archive cannot rebuild {stream} from its first event: retention pruned it "
            f"through sequence {extent.pruned_through}, its earliest available sequence is "
            f"{extent.pruned_through + 1} (the stream starts at {first})",
            fix="restore a kept backup (`fleet backup list`): the archive keeps every segment "
            "after a kept backup's positions; keep the archive longer with "
            "BACKUP_RUNNER_ARCHIVE_KEEP_DAYS",
        )
    if extent.first > 1:
        raise ReplayRefused(
            f"the archive cannot rebuild {stream}: {stream} 1-{extent.first - 1} missing from "
            "the archive",
            fix="put the missing segments back into the bucket",
        )
    if first > extent.last + 1:
        raise ReplayRefused(
            f"{stream} {extent.last + 1}-{first - 1} is in neither the archive (it ends at "
            f"{extent.last}) nor the stream (it starts at {first})",
            fix="those events are lost unless another copy exists; archive the stream more "
            "often than its retention",
        )
    if extent.subjects is not None and not covered_by_any(list(extent.subjects), subject):
        raise ReplayRefused(
            f"the archive of {stream} holds {', '.join(extent.subjects)} only; the replay "
            f"reads {subject}",
            fix="archive the subjects the worker reads (BACKUP_RUNNER_ARCHIVE_SUBJECTS)",
        )
    return extent.last
