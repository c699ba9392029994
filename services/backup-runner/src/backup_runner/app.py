"""Wiring of the backup-runner worker: its spec for the `fleet` CLI and the runtime."""

from __future__ import annotations

from backup_runner.settings import BackupRunnerSettings
from fleet_runtime.workers import WorkerSpec

WORKER = WorkerSpec(
    name="backup-runner",
    store="MinIO/S3",
    summary="verified backups and archived stream segments",
    settings_cls=BackupRunnerSettings,
    consumes=("ops.backup.requested.>",),
    publishes=("ops.backup.completed", "ops.backup.failed"),
    # Handlers are not written yet: the CLI reports the worker as not implemented.
    run=None,
)
