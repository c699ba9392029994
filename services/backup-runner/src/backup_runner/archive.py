"""The stream archive as `fleet replay --from-archive` reads it (``WorkerSpec.archive``).

Segments are read in key order (= stream order), from the chain's start (after the
pruned marker, when retention removed the oldest segments), and each is checked before a message
of it is handed over: a segment a stream manifest lists must have the size and sha256
the manifest records, it must decrypt (with the configured key) and hold exactly the
sequences its key names. Anything else stops the replay with one line naming the object.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from backup_runner.app import object_store
from backup_runner.archive_chain import (
    archived_ranges,
    chain_gaps,
    live_ranges,
    pruned_through,
    segment_key,
)
from backup_runner.encryption import DecryptionFailed, decrypt_chunks, parse_key
from backup_runner.manifest import ManifestObject, list_manifests
from backup_runner.objects import ObjectMissing, ObjectStore
from backup_runner.settings import BackupRunnerSettings
from backup_runner.targets.streams import record_data, segment_problem, segment_records
from fleet_runtime.replay.archive import ArchivedMessage, ArchiveExtent
from fleet_runtime.replay.target import ReplayRefused


class S3StreamArchive:
    """backup-runner's archived segments in its bucket, as a ``StreamArchive``."""

    def __init__(self, settings: BackupRunnerSettings, store: ObjectStore) -> None:
        self._settings = settings
        self._store = store
        secret = settings.encryption_key
        self._key = parse_key(secret.get_secret_value()) if secret is not None else None
        self._listed: dict[str, ManifestObject] = {}
        self._subjects: dict[str, list[str]] = {}
        self.description = f"S3 bucket {settings.s3_bucket}"

    def _load_manifests(self) -> None:
        for manifest in list_manifests(self._store):
            if manifest.target != "stream":
                continue
            self._listed.update({o.key: o for o in manifest.objects})
            for name, position in manifest.positions.items():
                if isinstance(position, dict) and position.get("subjects"):
                    self._subjects[name.removeprefix("stream.")] = list(position["subjects"])

    async def extent(self, stream: str) -> ArchiveExtent:
        if not self._listed:
            await asyncio.to_thread(self._load_manifests)
        ranges, pruned = await self._chain(stream)
        if not ranges:
            return ArchiveExtent(0, 0, pruned_through=pruned)
        # The newest stream backup says which subjects it archived; before backups
        # recorded it, the settings do (None: every subject of the stream).
        subjects = self._subjects.get(stream) or self._settings.archive_subjects.get(stream)
        return ArchiveExtent(
            max(ranges[0][0], pruned + 1),
            ranges[-1][1],
            chain_gaps(stream, ranges, pruned),
            subjects,
            pruned_through=pruned,
        )

    async def _chain(self, stream: str) -> tuple[list[tuple[int, int]], int]:
        """The segments after the pruned point, and that point (0: nothing pruned)."""
        ranges = await asyncio.to_thread(archived_ranges, self._store, stream)
        pruned = await asyncio.to_thread(pruned_through, self._store, stream)
        return live_ranges(ranges, pruned), pruned

    async def messages(self, stream: str, through: int) -> AsyncIterator[Sequence[ArchivedMessage]]:
        ranges, _ = await self._chain(stream)
        for first, last in ranges:
            if first > through:
                return
            records = await asyncio.to_thread(self._segment, stream, first, last)
            yield [
                ArchivedMessage(
                    int(r["seq"]), r["subject"], record_data(r), dict(r.get("headers") or {})
                )
                for r in records
                if int(r["seq"]) <= through
            ]

    def _segment(self, stream: str, first: int, last: int) -> list[dict[str, Any]]:
        key = segment_key(stream, first, last)
        try:
            stored = b"".join(self._store.get_chunks(key))
        except ObjectMissing:
            raise ReplayRefused(
                f"{key} was removed while the replay read the archive (a `fleet backup prune` "
                "running meanwhile?); nothing swapped",
                fix="run the replay again: it then reads the archive from its new start",
            ) from None
        listed = self._listed.get(key)
        digest = hashlib.sha256(stored).hexdigest()
        if listed is not None and (listed.size, listed.sha256) != (len(stored), digest):
            raise ReplayRefused(
                f"{key} does not match its manifest (size {len(stored)}, sha256 {digest[:16]}…)",
                fix="put an intact copy back into the bucket; `fleet backup verify` names "
                "every damaged object",
            )
        try:
            plain = (
                stored if self._key is None else b"".join(decrypt_chunks([stored], self._key, key))
            )
        except DecryptionFailed as exc:
            raise ReplayRefused(
                str(exc), fix="set BACKUP_RUNNER_ENCRYPTION_KEY to the archive's key"
            ) from None
        problem = segment_problem(plain, first, last)
        if problem is not None:
            raise ReplayRefused(
                f"{key} is unreadable: {problem}",
                fix="an encrypted archive needs BACKUP_RUNNER_ENCRYPTION_KEY; otherwise put an "
                "intact copy back into the bucket",
            )
        return segment_records(plain)

    async def close(self) -> None:
        return None


async def open_archive(settings: BackupRunnerSettings) -> S3StreamArchive:
    """The archive the settings point at (``WorkerSpec.archive``)."""
    return S3StreamArchive(settings, object_store(settings))
