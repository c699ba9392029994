"""The only place backup-runner subscribes and publishes: OPS requests -> backups -> outcomes.

Consumes ``ops.backup.requested.<id>`` (durable backup-runner, one at a time); produces
``ops.backup.completed.<id>`` or ``ops.backup.failed.<id>``, and, when a schedule is set,
``ops.backup.requested.sched-<target>-<slot>``.

A request the runner cannot carry out (unknown target or scope, a dump that fails on the
data) gets a failed event with the reason and is acked. An unreachable store (S3,
PostgreSQL, MongoDB) gets one failed event with ``retrying`` set, then the runtime keeps
the request in hand and tries again until the store is back; the manifest is written
only by a run that completes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import nats.js.errors
from nats.js.client import JetStreamContext

from backup_runner.errors import BackupRefused
from backup_runner.metrics import BackupMetrics
from backup_runner.runner import BackupRequest, BackupRunner
from backup_runner.schedule import scheduled_id, slot_start
from fleet_events import (
    OPS_STREAM,
    BackupCompleted,
    BackupFailed,
    BackupRequested,
    BackupTarget,
    DecodeError,
    Event,
    decode,
    encode,
    new_event,
    subject_for,
)
from fleet_runtime.consume import Subscription
from fleet_runtime.delivery import Batch
from fleet_runtime.errors import StoreUnavailable
from fleet_runtime.logs import get_logger
from fleet_runtime.publisher import EventPublisher

log = get_logger("backup_runner")

DURABLE = "backup-runner"
SOURCE = "backup-runner"


@dataclass(frozen=True)
class UnreadableRequest:
    """A backup request whose envelope names a backup id but whose payload is invalid."""

    id: UUID
    backup_id: str
    reason: str


def decode_request(raw: bytes) -> Event[Any] | UnreadableRequest:
    """The request event; a request with a bad target still yields its backup id.

    Anything else undecodable raises ``DecodeError`` and is dead-lettered by the runtime.
    """
    try:
        event = decode(raw)
    except DecodeError as exc:
        try:
            envelope = json.loads(raw)
            backup_id = envelope["data"]["backup_id"]
            event_id = UUID(envelope["id"])
        except (ValueError, KeyError, TypeError):
            raise exc from None
        if envelope.get("type") != BackupRequested.event_type or not isinstance(backup_id, str):
            raise
        if not backup_id or any(c in backup_id for c in ".*> \t\r\n"):
            raise
        return UnreadableRequest(event_id, backup_id, f"invalid request: {exc}")
    if not isinstance(event.data, BackupRequested):
        raise DecodeError(f"type {event.type} is not ops.backup.requested")
    return event


def subscriptions(
    runner: BackupRunner, publisher: EventPublisher, metrics: BackupMetrics
) -> list[Subscription]:
    """The worker's one subscription: backup requests, bound to ``runner``."""
    announced: set[str] = set()

    async def failed(
        request: Event[Any] | UnreadableRequest,
        target: BackupTarget | None,
        reason: str,
        *,
        retrying: bool = False,
    ) -> None:
        backup_id = (
            request.backup_id
            if isinstance(request, UnreadableRequest)
            else (request.data.backup_id)
        )
        payload = BackupFailed(
            backup_id=backup_id, target=target, reason=reason[:2000], retrying=retrying or None
        )
        await publisher.publish(new_event(payload, source=SOURCE, causation_id=request.id))
        metrics.failed(target.value if target else None)
        log.warning("backup_failed", backup_id=backup_id, reason=reason, retrying=retrying)

    async def handle(request: Event[Any] | UnreadableRequest) -> None:
        if isinstance(request, UnreadableRequest):
            await failed(request, None, request.reason)
            return
        data: BackupRequested = request.data
        wanted = BackupRequest(data.backup_id, data.target.value, data.scope, data.requested_by)
        log.info("backup_started", backup_id=data.backup_id, target=wanted.target, scope=data.scope)
        try:
            done = await runner.run(wanted)
        except BackupRefused as exc:
            await failed(request, data.target, str(exc))
            return
        except StoreUnavailable as exc:
            if data.backup_id not in announced:
                announced.add(data.backup_id)
                await failed(request, data.target, f"store unavailable: {exc}", retrying=True)
            raise
        except Exception as exc:
            # The runtime retries it with the consumer's backoff, then dead-letters it.
            await failed(request, data.target, f"{type(exc).__name__}: {exc}", retrying=True)
            raise
        announced.discard(data.backup_id)
        manifest = done.manifest
        completed = BackupCompleted(
            backup_id=data.backup_id,
            target=data.target,
            object_key=done.key,
            size_bytes=manifest.size_bytes,
            sha256=done.sha256,
            objects=len(manifest.objects),
            duration_s=round(done.duration_s, 3),
            gaps=manifest.gaps or None,
        )
        await publisher.publish(new_event(completed, source=SOURCE, causation_id=request.id))
        metrics.completed(
            wanted.target,
            manifest.size_bytes,
            done.duration_s,
            len(manifest.gaps) if wanted.target == "stream" else None,
        )
        log.info(
            "backup_completed",
            backup_id=data.backup_id,
            manifest=done.key,
            objects=len(manifest.objects),
            bytes=manifest.size_bytes,
            gaps=manifest.gaps,
            duration_s=round(done.duration_s, 3),
        )

    async def on_requests(batch: Batch[Any]) -> None:
        for delivery in batch:
            await handle(delivery.event)

    return [
        Subscription(stream=OPS_STREAM, durable=DURABLE, handler=on_requests, decode=decode_request)
    ]


async def publish_schedule(
    js: JetStreamContext, targets: list[str], every_s: float, stop: asyncio.Event
) -> None:
    """Request a backup of each of ``targets`` once per slot of ``every_s`` seconds.

    The schedule goes through the stream like any request, so each scheduled backup has
    the same audit trail (requested, then completed or failed).
    """
    publisher = EventPublisher(js)
    while not stop.is_set():
        start = slot_start(datetime.now(UTC), every_s)
        try:
            for target in targets:
                await _request_slot(js, publisher, target, start)
        except Exception as exc:
            # NATS unreachable: the next pass (at the latest the next slot) tries again.
            log.warning("backup_schedule_failed", error=f"{type(exc).__name__}: {exc}")
        next_slot = start.timestamp() + every_s
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(next_slot - time.time(), 0.05))


async def _request_slot(
    js: JetStreamContext, publisher: EventPublisher, target: str, start: datetime
) -> None:
    backup_id = scheduled_id(target, start)
    subject = f"ops.backup.requested.{backup_id}"
    try:
        await js.get_last_msg(OPS_STREAM, subject)
        return  # this slot's request is in the stream already
    except nats.js.errors.NotFoundError:
        pass
    request = new_event(
        BackupRequested(backup_id=backup_id, target=BackupTarget(target), requested_by="schedule"),
        source=SOURCE,
    )
    await publisher.publish_raw(subject_for(request), encode(request), backup_id)
    log.info("backup_scheduled", backup_id=backup_id, target=target)
