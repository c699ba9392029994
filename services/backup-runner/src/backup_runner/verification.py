"""What `fleet backup verify` found, kept next to the backup it read.

Retention keeps the newest backup of each target whose last verification read every
object back intact, besides the newest backup: when the newest one turns out corrupt, an
older good one is still there to restore. The record lives under the backup's prefix, so
it goes when the backup goes.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from pydantic import BaseModel, ConfigDict, ValidationError

from backup_runner.manifest import backup_prefix
from backup_runner.objects import ObjectMissing, ObjectStore

VERIFICATION_NAME = "verified.json"


def verification_key(backup_id: str) -> str:
    """The key of ``backup_id``'s verification record."""
    return f"{backup_prefix(backup_id)}{VERIFICATION_NAME}"


class Verification(BaseModel):
    """One run of `fleet backup verify` over a backup."""

    model_config = ConfigDict(frozen=True)

    backup_id: str
    verified_at: datetime
    ok: bool
    objects_checked: int
    problems: list[str]


def record_verification(store: ObjectStore, verification: Verification) -> None:
    """Store ``verification`` as the backup's latest (it replaces an earlier one)."""
    data = verification.model_dump_json(indent=2).encode()
    store.put_bytes(verification_key(verification.backup_id), data)


def read_verification(store: ObjectStore, backup_id: str) -> Verification | None:
    """The latest verification of ``backup_id``; None when it was never verified (or its
    record is unreadable: then it does not count as verified)."""
    try:
        raw = b"".join(store.get_chunks(verification_key(backup_id)))
    except ObjectMissing:
        return None
    try:
        return Verification.model_validate_json(raw)
    except ValidationError:
        return None


def verified_ids(store: ObjectStore, backup_ids: Iterable[str]) -> set[str]:
    """Those of ``backup_ids`` whose latest verification found every object intact."""
    found = set()
    for backup_id in backup_ids:
        verification = read_verification(store, backup_id)
        if verification is not None and verification.ok:
            found.add(backup_id)
    return found
