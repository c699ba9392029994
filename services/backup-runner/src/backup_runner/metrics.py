"""backup-runner's own metrics, on the worker's /metrics page next to the runtime's."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_DURATION_BUCKETS = (1, 5, 15, 60, 300, 900, 1800, 3600, 7200, 14400)


class BackupMetrics:
    """Last good backup per target (alert when too old), its size and time, failures."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.last_success = Gauge(
            "fleet_backup_last_success_timestamp_seconds",
            "Unix time of the last backup of the target that wrote its manifest.",
            ("target",),
            registry=self.registry,
        )
        self.last_bytes = Gauge(
            "fleet_backup_last_size_bytes",
            "Bytes of every object of the last completed backup of the target.",
            ("target",),
            registry=self.registry,
        )
        self.duration = Histogram(
            "fleet_backup_duration_seconds",
            "Seconds from the start of a backup to its manifest.",
            ("target",),
            buckets=_DURATION_BUCKETS,
            registry=self.registry,
        )
        self.failures = Counter(
            "fleet_backup_failures",
            "Backups that published ops.backup.failed.",
            ("target",),
            registry=self.registry,
        )
        self.gaps = Gauge(
            "fleet_backup_archive_gaps",
            "Gaps in the stream archive found by the last stream backup.",
            registry=self.registry,
        )

    def completed(self, target: str, size: int, duration_s: float, gaps: int | None) -> None:
        """Record a backup whose manifest is written."""
        self.last_success.labels(target).set(time.time())
        self.last_bytes.labels(target).set(size)
        self.duration.labels(target).observe(duration_s)
        if gaps is not None:
            self.gaps.set(gaps)

    def failed(self, target: str | None) -> None:
        """Record a failed event."""
        self.failures.labels(target or "unknown").inc()
