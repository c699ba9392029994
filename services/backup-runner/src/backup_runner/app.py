"""Wiring of the backup-runner worker: its spec for the `fleet` CLI and the runtime."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from backup_runner.handlers import DURABLE, publish_schedule, subscriptions
from backup_runner.metrics import BackupMetrics
from backup_runner.objects import MinioObjectStore
from backup_runner.reader_role import READER_ROLE, ensure_reader_role
from backup_runner.runner import BackupRunner
from backup_runner.settings import BackupRunnerSettings
from fleet_pgmigrate.roles import dsn_with, ensure_database
from fleet_runtime.publisher import EventPublisher
from fleet_runtime.worker import serve, worker_nats
from fleet_runtime.workers import WorkerSpec

DEV_DATABASE = "tradefleet"
DEV_MONGO_DATABASE = "tradefleet_analytics"


def object_store(settings: BackupRunnerSettings) -> MinioObjectStore:
    """The S3 adapter the settings point at (connects on first use)."""
    return MinioObjectStore(
        endpoint=settings.s3_endpoint,
        access_key=settings.s3_access_key.get_secret_value(),
        secret_key=settings.s3_secret_key.get_secret_value(),
        bucket=settings.s3_bucket,
        region=settings.s3_region,
        secure=settings.s3_secure,
        part_size=settings.s3_part_size_mb * 1024 * 1024,
    )


async def run(
    settings: BackupRunnerSettings,
    partition: int | None,
    *,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[int], None] | None = None,
) -> None:
    """Consume backup requests until SIGTERM/SIGINT (or ``stop``)."""
    store = object_store(settings)
    # `serve` keeps its NATS connection to itself: outcomes and stream reads use a second.
    nc = await worker_nats(settings, f"{DURABLE}-work", user=DURABLE)
    schedule: asyncio.Task[None] | None = None
    try:
        js = nc.jetstream()
        runner = BackupRunner(settings, store, js)
        metrics = BackupMetrics()
        stop = stop or asyncio.Event()
        if settings.schedule_every_s:
            schedule = asyncio.create_task(
                publish_schedule(
                    js, list(settings.schedule_targets), settings.schedule_every_s, stop
                ),
                name="backup-schedule",
            )
        await serve(
            worker=DURABLE,
            settings=settings,
            subscriptions=subscriptions(runner, EventPublisher(js), metrics),
            registry=metrics.registry,
            store_probe=lambda: asyncio.to_thread(store.ensure_bucket),
            partition=partition,
            stop=stop,
            on_ready=on_ready,
        )
    finally:
        if schedule is not None:
            schedule.cancel()
        await nc.drain()


async def dev_setup(env: Mapping[str, str]) -> Mapping[str, str]:
    """For `fleet dev up`: the launcher's S3, a read-only PostgreSQL role, its MongoDB."""
    admin = env["FLEET_POSTGRES_DSN"]
    await ensure_database(admin, DEV_DATABASE)
    await ensure_reader_role(admin)
    found = {
        "BACKUP_RUNNER_S3_ENDPOINT": env["FLEET_S3_ENDPOINT"],
        "BACKUP_RUNNER_S3_ACCESS_KEY": env["FLEET_S3_ACCESS_KEY"],
        "BACKUP_RUNNER_S3_SECRET_KEY": env["FLEET_S3_SECRET_KEY"],
        "BACKUP_RUNNER_S3_REGION": env["FLEET_S3_REGION"],
        "BACKUP_RUNNER_POSTGRES_DSN": dsn_with(admin, user=READER_ROLE, database=DEV_DATABASE),
        "BACKUP_RUNNER_MONGO_URL": env["FLEET_MONGO_URL"],
        "BACKUP_RUNNER_MONGO_DATABASES": f'["{DEV_MONGO_DATABASE}"]',
    }
    if "FLEET_POSTGRES_BIN_DIR" in env:
        found["BACKUP_RUNNER_PG_BIN_DIR"] = env["FLEET_POSTGRES_BIN_DIR"]
    return found


def commands() -> Any:
    """The `fleet backup` command group (list, show, verify)."""
    from backup_runner.cli import app  # noqa: PLC0415 - loaded only by `fleet backup`

    return app


WORKER = WorkerSpec(
    name="backup-runner",
    store="MinIO/S3",
    summary="verified backups of PostgreSQL and MongoDB, archived stream segments",
    settings_cls=BackupRunnerSettings,
    consumes=("ops.backup.requested.>",),
    publishes=("ops.backup.completed", "ops.backup.failed"),
    # Its schedule asks for backups like an operator does.
    also_publishes=("ops.backup.requested",),
    # Archives streams (ephemeral consumers) and reads the last outcome of a backup.
    reads_streams=("*",),
    run=run,
    dev_setup=dev_setup,
    fleet_commands=commands,
    archive="backup_runner.archive:open_archive",
)
