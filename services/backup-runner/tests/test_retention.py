"""Retention: the grandfather-father-son choice (pure), and `fleet backup prune` on S3."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from nats.js.client import JetStreamContext

from backup_runner.manifest import Manifest, list_manifests
from backup_runner.objects import MinioObjectStore
from backup_runner.retention import RetentionPolicy, decide
from backup_runner.runner import BackupRequest, BackupRunner
from backup_runner.settings import BackupRunnerSettings
from backup_runner.verification import Verification, read_verification

from .test_restore import fleet_backup

NOW = datetime(2026, 6, 15, 12, 30, tzinfo=UTC)
FAILED = Verification(backup_id="", verified_at=NOW, ok=False, objects_checked=0, problems=[])


def made(backup_id: str, at: datetime, target: str = "postgres") -> Manifest:
    return Manifest(
        backup_id=backup_id,
        target=target,
        scope=None,
        requested_by="t",
        started_at=at,
        finished_at=at,
        objects=[],
    )


async def three_backups(
    settings: BackupRunnerSettings, store: MinioObjectStore, js: JetStreamContext, prefix: str
) -> list[str]:
    """Three backups of the trading schema, oldest first; their ids."""
    ids = [f"{prefix}{n}-{uuid.uuid4().hex[:6]}" for n in range(3)]
    runner = BackupRunner(settings, store, js)
    for backup_id in ids:
        await runner.run(BackupRequest(backup_id, "postgres", "trading", "test"))
    return ids


def test_newest_per_hour_day_and_month_are_kept() -> None:
    hourly = [made(f"h{i}", NOW - timedelta(minutes=20 * i)) for i in range(9)]  # 3 hours
    daily = [made(f"d{i}", NOW - timedelta(days=i, hours=6)) for i in range(1, 6)]
    monthly = [made(f"m{i}", NOW - timedelta(days=31 * i)) for i in range(1, 5)]
    decision = decide([*hourly, *daily, *monthly], RetentionPolicy(hourly=2, daily=3, monthly=2))
    # The newest of each of the last two hours: 12:30 (h0) and 11:50 (h2).
    assert decision.keep["h0"] == "newest of its target"
    assert decision.keep["h2"] == "hourly"
    # Days: today (h0, already kept), the 14th and the 13th.
    assert decision.keep["d1"] == "daily"
    assert decision.keep["d2"] == "daily"
    # Months: June (h0) and May (m1).
    assert decision.keep["m1"] == "monthly"
    assert set(decision.keep) == {"h0", "h2", "d1", "d2", "m1"}
    assert len(decision.prune) == len(hourly) + len(daily) + len(monthly) - 5


def test_the_newest_backup_of_every_target_is_kept_even_with_a_zero_policy() -> None:
    backups = [made("pg-old", NOW - timedelta(days=90)), made("mg", NOW, "mongodb")]
    decision = decide(backups, RetentionPolicy(hourly=0, daily=0, monthly=0))
    assert set(decision.keep) == {"pg-old", "mg"}
    assert decision.prune == []


async def test_prune_deletes_manifest_and_objects_of_what_the_policy_drops(
    settings: BackupRunnerSettings, store: MinioObjectStore, js: JetStreamContext
) -> None:
    ids = await three_backups(settings, store, js, "p")
    # Three backups in the same hour: the policy keeps the newest only.
    policy = settings.model_copy(update={"keep_hourly": 1, "keep_daily": 0, "keep_monthly": 0})

    dry = await fleet_backup(policy, "prune", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"would prune  {ids[0]}" in dry.stdout
    assert f"would prune  {ids[1]}" in dry.stdout
    assert "2 backups would be pruned, 1 kept" in dry.stdout
    assert len(list_manifests(store)) == 3

    done = await fleet_backup(policy, "prune")
    assert done.returncode == 0, done.stderr
    assert [m.backup_id for m in list_manifests(store)] == [ids[2]]
    assert store.keys(f"backups/{ids[0]}/") == []
    assert store.keys(f"backups/{ids[1]}/") == []
    assert len(store.keys(f"backups/{ids[2]}/")) == 2  # the dump and the manifest


def test_the_newest_verified_backup_of_a_target_is_kept_besides_the_newest() -> None:
    backups = [made(f"pg{i}", NOW - timedelta(days=i)) for i in range(4)]
    zero = RetentionPolicy(hourly=0, daily=0, monthly=0)
    decision = decide(backups, zero, verified={"pg2", "pg3"})
    assert decision.keep == {"pg0": "newest of its target", "pg2": "newest verified of its target"}
    assert decision.prune == ["pg1", "pg3"]
    # Verified newest: one backup kept, not two.
    assert set(decide(backups, zero, verified={"pg0"}).keep) == {"pg0"}


async def test_prune_keeps_the_newest_backup_verify_found_intact(
    settings: BackupRunnerSettings, store: MinioObjectStore, js: JetStreamContext
) -> None:
    ids = await three_backups(settings, store, js, "v")
    good = await fleet_backup(settings, "verify", ids[0])
    assert good.returncode == 0, good.stderr
    # The newest backup is damaged, and verify says so (and records it).
    [dump] = list_manifests(store)[-1].objects
    store.put_bytes(dump.key, b"not the dump")
    bad = await fleet_backup(settings, "verify", ids[2])
    assert bad.returncode == 1
    assert (read_verification(store, ids[0]) or FAILED).ok
    assert not (read_verification(store, ids[2]) or FAILED).ok
    assert read_verification(store, ids[1]) is None

    listing = await fleet_backup(settings, "list")
    lines = {line.split()[0]: line for line in listing.stdout.splitlines()[1:]}
    assert "  verified " in lines[ids[0]]
    assert "VERIFY FAILED" in lines[ids[2]]

    policy = settings.model_copy(update={"keep_hourly": 0, "keep_daily": 0, "keep_monthly": 0})
    done = await fleet_backup(policy, "prune")
    assert done.returncode == 0, done.stderr
    assert f"keep   {ids[0]}  (newest verified of its target)" in done.stdout
    assert f"keep   {ids[2]}  (newest of its target)" in done.stdout
    assert [m.backup_id for m in list_manifests(store)] == [ids[0], ids[2]]
    # The pruned backup went whole; the kept ones keep their verification records.
    assert store.keys(f"backups/{ids[1]}/") == []
    assert len(store.keys(f"backups/{ids[0]}/")) == 3  # dump, manifest, verification
