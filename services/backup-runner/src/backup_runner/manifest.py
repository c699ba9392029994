"""The manifest: the object written last that makes a set of objects a backup.

It lists every object with its size and sha256, the store positions at the time (the
workers' checkpoints, or the archived stream ranges) and the tool versions. A backup id
without a manifest is an interrupted run, never a backup.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from backup_runner.objects import ObjectMissing, ObjectStore, StoredObject

FORMAT = 1
BACKUPS_PREFIX = "backups/"
MANIFEST_NAME = "manifest.json"


def backup_prefix(backup_id: str) -> str:
    """Where the objects of ``backup_id`` live."""
    return f"{BACKUPS_PREFIX}{backup_id}/"


def manifest_key(backup_id: str) -> str:
    """The key of ``backup_id``'s manifest."""
    return f"{backup_prefix(backup_id)}{MANIFEST_NAME}"


class ManifestObject(BaseModel):
    """One object of the backup."""

    model_config = ConfigDict(frozen=True)

    key: str
    size: int
    sha256: str
    what: str = ""
    """What the object holds (``schema lifecycle``, ``collection x``, ``BOTS 1-500``)."""

    @classmethod
    def of(cls, stored: StoredObject, what: str) -> ManifestObject:
        """The manifest entry of an uploaded object."""
        return cls(key=stored.key, size=stored.size, sha256=stored.sha256, what=what)


class Manifest(BaseModel):
    """What a completed backup holds."""

    model_config = ConfigDict(frozen=True)

    format: int = FORMAT
    backup_id: str
    target: str
    scope: str | None
    requested_by: str
    started_at: datetime
    finished_at: datetime
    objects: list[ManifestObject]
    positions: dict[str, Any] = Field(default_factory=dict)
    """Store positions at the time: checkpoints per schema/database, archived ranges per stream."""
    tools: dict[str, str] = Field(default_factory=dict)
    encryption: str | None = None
    """How the objects are encrypted (``aes-256-gcm-frames-v1``), None when they are not."""
    key_id: str | None = None
    """Which key: the first 16 hex digits of its sha256 (the key itself is never stored)."""
    gaps: list[str] = Field(default_factory=list)
    """Stream ranges missing from the archive (a segment that does not follow the previous one)."""

    @property
    def size_bytes(self) -> int:
        """Bytes of every object together."""
        return sum(o.size for o in self.objects)

    def to_bytes(self) -> bytes:
        """Canonical JSON (sorted keys) of the manifest."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, indent=2).encode()


def read_manifest(store: ObjectStore, backup_id: str) -> Manifest:
    """The manifest of ``backup_id``; ``ObjectMissing`` when there is none."""
    raw = b"".join(store.get_chunks(manifest_key(backup_id)))
    return Manifest.model_validate_json(raw)


def list_manifests(store: ObjectStore) -> list[Manifest]:
    """Every backup that has a manifest, oldest first."""
    found = []
    for key in store.keys(BACKUPS_PREFIX):
        if key.endswith("/" + MANIFEST_NAME):
            backup_id = key[len(BACKUPS_PREFIX) : -len(MANIFEST_NAME) - 1]
            found.append(read_manifest(store, backup_id))
    return sorted(found, key=lambda m: m.started_at)


def verify_object(store: ObjectStore, entry: ManifestObject) -> str | None:
    """None when the object reads back with its listed size and sha256, else what is wrong."""
    digest = hashlib.sha256()
    size = 0
    try:
        for chunk in store.get_chunks(entry.key):
            digest.update(chunk)
            size += len(chunk)
    except ObjectMissing:
        return f"{entry.key}: missing"
    if size != entry.size:
        return f"{entry.key}: size {size}, manifest says {entry.size}"
    if digest.hexdigest() != entry.sha256:
        return f"{entry.key}: sha256 {digest.hexdigest()}, manifest says {entry.sha256}"
    return None
