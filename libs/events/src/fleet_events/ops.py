"""Operations payloads: ``ops.backup.requested`` / ``.completed`` / ``.failed``."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import Field

from .payload import Payload
from .scalars import NonEmptyStr, SubjectToken


class BackupTarget(StrEnum):
    """What a backup copies."""

    POSTGRES = "postgres"
    MONGODB = "mongodb"
    STREAM = "stream"


class _BackupPayload(Payload):
    """Shared fields and routing: subject ``ops.backup.<verb>.<backup_id>``."""

    subject_fields: ClassVar[tuple[str, ...]] = ("backup_id",)
    key_field: ClassVar[str] = "backup_id"

    backup_id: SubjectToken


class BackupRequested(_BackupPayload):
    """Someone (an operator or a schedule) asked for a backup."""

    event_type: ClassVar[str] = "ops.backup.requested"
    schema_version: ClassVar[int] = 1

    target: BackupTarget
    requested_by: NonEmptyStr
    scope: str | None = None
    """Part of the target to copy (a database, schema or stream name); None means all."""


class BackupCompleted(_BackupPayload):
    """A backup was written and checksummed: ``object_key`` is its manifest, written last.

    ``size_bytes`` counts every object of the backup; ``sha256`` is the manifest's digest
    (the manifest lists each object's own size and sha256).
    """

    event_type: ClassVar[str] = "ops.backup.completed"
    schema_version: ClassVar[int] = 1

    target: BackupTarget
    object_key: NonEmptyStr
    size_bytes: Annotated[int, Field(ge=0)]
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    objects: Annotated[int, Field(ge=0)] | None = None
    """How many objects the manifest lists."""
    duration_s: Annotated[float, Field(ge=0)] | None = None
    """Seconds from the start of the backup to its manifest."""
    gaps: list[str] | None = None
    """Stream ranges missing from the archive (stream target), when any are."""


class BackupFailed(_BackupPayload):
    """A backup did not complete."""

    event_type: ClassVar[str] = "ops.backup.failed"
    schema_version: ClassVar[int] = 1

    target: BackupTarget | None
    """None when the request named a target this runner does not know (see ``reason``)."""
    reason: NonEmptyStr
    retrying: bool | None = None
    """True when the request stays in hand and is tried again (S3 or a store unreachable)."""
