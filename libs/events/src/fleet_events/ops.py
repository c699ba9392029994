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
    target: BackupTarget


class BackupRequested(_BackupPayload):
    """Someone (an operator or a schedule) asked for a backup."""

    event_type: ClassVar[str] = "ops.backup.requested"
    schema_version: ClassVar[int] = 1

    requested_by: NonEmptyStr
    scope: str | None = None
    """Part of the target to copy (a database, schema or stream name); None means all."""


class BackupCompleted(_BackupPayload):
    """A backup object was written and checksummed."""

    event_type: ClassVar[str] = "ops.backup.completed"
    schema_version: ClassVar[int] = 1

    object_key: NonEmptyStr
    size_bytes: Annotated[int, Field(ge=0)]
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class BackupFailed(_BackupPayload):
    """A backup did not complete."""

    event_type: ClassVar[str] = "ops.backup.failed"
    schema_version: ClassVar[int] = 1

    reason: NonEmptyStr
