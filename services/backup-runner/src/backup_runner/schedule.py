"""The backup schedule: fixed slots of ``every_s`` seconds, one request per target per slot.

A slot's backup id is derived from its start (``sched-postgres-20260301T120000Z``), so
every runner that publishes the schedule names the same backup: the request is published
only when the stream does not hold it yet, and its ``Nats-Msg-Id`` is the backup id, so
two runners racing on one slot store it once.
"""

from __future__ import annotations

from datetime import UTC, datetime


def slot_start(now: datetime, every_s: float) -> datetime:
    """The start of the slot ``now`` falls in (slots are aligned on the Unix epoch)."""
    seconds = now.timestamp()
    return datetime.fromtimestamp(seconds - seconds % every_s, UTC)


def scheduled_id(target: str, start: datetime) -> str:
    """The backup id of ``target``'s scheduled backup for the slot starting at ``start``."""
    return f"sched-{target}-{start:%Y%m%dT%H%M%SZ}"
