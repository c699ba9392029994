"""backup-runner in the benchmark: its figures against raw tools on the same servers and bytes.

- **PostgreSQL backup, MB/s** of dump bytes stored, against a raw ``pg_dump`` (same
  arguments) to a file and a raw S3 multipart upload of that file (minio, same part size).
- **Peak RSS** of a process that runs the backup (``VmHWM``), for two dump sizes: the
  upload holds one part, so the peak must not grow with the dump.
- **Stream archive, events/s** against the ordered-push consumer, the fastest way to read
  the same stream (the replay engine's).

Everything is measured in the same run, on fresh servers (NATS, PostgreSQL, SeaweedFS).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import nats
from minio import Minio

from backup_runner.app import object_store
from backup_runner.runner import BackupRequest, BackupRunner, find_pg_dump
from backup_runner.settings import BackupRunnerSettings
from bench import limits
from bench.workloads import trade_fills
from fleet_runtime.topology import apply, load_topology
from fleet_testing import Fleet

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = "benchdata"


@dataclass(frozen=True)
class BackupSizes:
    """Table sizes (rows of ~300 bytes) for the two dumps, and events archived."""

    small_rows: int
    large_rows: int
    archive_events: int


FULL = BackupSizes(small_rows=500_000, large_rows=1_500_000, archive_events=100_000)
QUICK = BackupSizes(small_rows=100_000, large_rows=300_000, archive_events=20_000)


def _settings(fleet: Fleet, bucket: str) -> BackupRunnerSettings:
    env = fleet.s3.env()
    return BackupRunnerSettings(
        nats_url=fleet.nats.url,
        s3_endpoint=fleet.s3.endpoint,
        s3_access_key=env["FLEET_S3_ACCESS_KEY"],
        s3_secret_key=env["FLEET_S3_SECRET_KEY"],
        s3_region=env["FLEET_S3_REGION"],
        s3_bucket=bucket,
        postgres_dsn=fleet.postgres.dsn(),
        pg_bin_dir=str(fleet.postgres.bin_dir),
        postgres_schemas=[SCHEMA],
        archive_streams=["TRADES"],
    )


async def _fill_table(dsn: str, rows: int) -> int:
    """(Re)create ``benchdata.blob`` with ``rows`` rows: half random bytes, half hex text."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE; CREATE SCHEMA {SCHEMA}")
        await conn.execute(
            f"CREATE TABLE {SCHEMA}.blob (id bigint PRIMARY KEY, raw bytea, hex text)"
        )
        random_hex = " || ".join(f"md5(random()::text || {i})" for i in range(8))
        await conn.execute(
            f"INSERT INTO {SCHEMA}.blob SELECT g, decode({random_hex}, 'hex'), "
            f"md5(g::text) || md5(g::text || 'x') || md5(g::text || 'y') || md5(g::text || 'z') "
            f"FROM generate_series(1, {rows}) g"
        )
        size: int = await conn.fetchval(f"SELECT pg_total_relation_size('{SCHEMA}.blob')")
        return size
    finally:
        await conn.close()


def _raw_pg_dump(settings: BackupRunnerSettings, path: Path) -> float:
    """``pg_dump`` exactly as the postgres target runs it, into a file; seconds."""
    started = time.perf_counter()
    with path.open("wb") as out:
        subprocess.run(
            [
                find_pg_dump(settings.pg_bin_dir),
                "--format=custom",
                f"--schema={SCHEMA}",
                "--no-password",
                f"--dbname={settings.postgres_dsn.get_secret_value()}",
            ],
            stdout=out,
            check=True,
        )
    return time.perf_counter() - started


def _raw_upload(settings: BackupRunnerSettings, path: Path) -> float:
    """A multipart upload of ``path`` with the minio client and the runner's part size."""
    client = Minio(
        settings.s3_endpoint.removeprefix("http://"),
        access_key=settings.s3_access_key.get_secret_value(),
        secret_key=settings.s3_secret_key.get_secret_value(),
        region=settings.s3_region,
        secure=False,
    )
    started = time.perf_counter()
    client.fput_object(
        settings.s3_bucket,
        f"raw/{uuid.uuid4().hex}.dump",
        str(path),
        part_size=settings.s3_part_size_mb * 1024 * 1024,
    )
    return time.perf_counter() - started


def _child_backup(settings: BackupRunnerSettings) -> dict[str, Any]:
    """Run one postgres backup in a fresh process; its seconds, bytes and peak RSS."""
    env = {**os.environ, "BENCH_BACKUP_SETTINGS": settings.model_dump_json()}
    # Secrets are dumped masked by pydantic: hand them over separately.
    env["BENCH_BACKUP_SECRETS"] = json.dumps(
        {
            "s3_access_key": settings.s3_access_key.get_secret_value(),
            "s3_secret_key": settings.s3_secret_key.get_secret_value(),
            "postgres_dsn": settings.postgres_dsn.get_secret_value(),
        }
    )
    out = subprocess.run(
        [sys.executable, "-m", "bench.backups", "--child"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    child: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return child


def _vm_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


async def _child_main() -> None:
    values = json.loads(os.environ["BENCH_BACKUP_SETTINGS"])
    values.update(json.loads(os.environ["BENCH_BACKUP_SECRETS"]))
    values.pop("encryption_key", None)
    settings = BackupRunnerSettings(**values)
    nc = await nats.connect(settings.nats_url)
    try:
        runner = BackupRunner(settings, object_store(settings), nc.jetstream())
        await asyncio.to_thread(object_store(settings).ensure_bucket)
        before_kb = _vm_kb("VmRSS")
        request = BackupRequest(f"bench-{uuid.uuid4().hex[:8]}", "postgres", SCHEMA, "bench")
        started = time.perf_counter()
        done = await runner.run(request)
        seconds = time.perf_counter() - started
    finally:
        await nc.close()
    print(
        json.dumps(
            {
                "seconds": seconds,
                "bytes": done.manifest.size_bytes,
                "rss_before_mb": before_kb / 1024,
                "peak_rss_mb": _vm_kb("VmHWM") / 1024,
            }
        )
    )


async def _dump_round(settings: BackupRunnerSettings, rows: int, tmp: Path) -> dict[str, Any]:
    table = await _fill_table(settings.postgres_dsn.get_secret_value(), rows)
    path = tmp / "raw.dump"
    dump_s = await asyncio.to_thread(_raw_pg_dump, settings, path)
    size = path.stat().st_size
    upload_s = await asyncio.to_thread(_raw_upload, settings, path)
    backup = await asyncio.to_thread(_child_backup, settings)
    path.unlink()
    mb = 1024 * 1024
    return {
        "rows": rows,
        "table_mb": table / mb,
        "dump_mb": size / mb,
        "backup_mb": backup["bytes"] / mb,
        "pg_dump_mb_s": size / mb / dump_s,
        "s3_upload_mb_s": size / mb / upload_s,
        "backup_mb_s": backup["bytes"] / mb / backup["seconds"],
        "backup_over_pg_dump": (backup["bytes"] / backup["seconds"]) / (size / dump_s),
        "backup_over_s3_upload": (backup["bytes"] / backup["seconds"]) / (size / upload_s),
        "backup_rss_before_mb": backup["rss_before_mb"],
        "backup_peak_rss_mb": backup["peak_rss_mb"],
    }


async def _archive_round(fleet: Fleet, settings: BackupRunnerSettings, n: int) -> dict[str, Any]:
    nc = await nats.connect(fleet.nats.url)
    try:
        js = nc.jetstream()
        await apply(js, load_topology(ROOT / "streams.yaml"))
        await limits.load_stream(nc, js, trade_fills(n, seed=3))
        push = await limits.ordered_push(nc, js, "TRADES", "trade.>", n)
        runner = BackupRunner(settings, object_store(settings), js)
        started = time.perf_counter()
        done = await runner.run(
            BackupRequest(f"bench-{uuid.uuid4().hex[:8]}", "stream", "TRADES", "bench")
        )
        seconds = time.perf_counter() - started
    finally:
        await nc.close()
    archived = done.manifest.positions["stream.TRADES"]["archived_through"]
    return {
        "events": archived,
        "segments": len(done.manifest.objects),
        "archive_mb": done.manifest.size_bytes / 1024 / 1024,
        "archive_events_s": archived / seconds,
        "ordered_push_events_s": push,
        "archive_over_ordered_push": archived / seconds / push,
    }


async def measure(quick: bool) -> dict[str, Any]:
    """Every backup-runner figure of one run, with its same-run baselines."""
    sizes = QUICK if quick else FULL
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="fleet-bench-backup-"))
    with Fleet(tmp / "servers") as fleet:
        fleet.start("nats", "postgres", "s3")
        settings = _settings(fleet, f"bench-{uuid.uuid4().hex[:8]}")
        await asyncio.to_thread(object_store(settings).ensure_bucket)
        dumps = [
            await _dump_round(settings, rows, tmp) for rows in (sizes.small_rows, sizes.large_rows)
        ]
        archive = await _archive_round(fleet, settings, sizes.archive_events)
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "sizes": asdict(sizes),
        "part_size_mb": settings.s3_part_size_mb,
        "dumps": dumps,
        "archive": archive,
        "seconds": round(time.monotonic() - started, 1),
    }


def markdown(doc: dict[str, Any]) -> str:
    """The backup-runner section of the report."""
    lines = [
        "# backup-runner benchmark",
        "",
        f"{doc['date']}, {doc.get('machine', {}).get('cpus', '?')} CPUs; fresh NATS, "
        f"PostgreSQL and SeaweedFS S3; part size {doc['part_size_mb']} MB; {doc['seconds']} s.",
        "",
        "## PostgreSQL backup against raw pg_dump and a raw S3 upload (same run, same bytes)",
        "",
        "| table MB | dump MB | backup MB/s | raw pg_dump MB/s | raw S3 multipart MB/s | "
        "/ pg_dump | / S3 upload | backup process RSS before → peak |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for d in doc["dumps"]:
        lines.append(
            f"| {d['table_mb']:.0f} | {d['dump_mb']:.0f} | {d['backup_mb_s']:.1f} | "
            f"{d['pg_dump_mb_s']:.1f} | {d['s3_upload_mb_s']:.1f} | "
            f"{d['backup_over_pg_dump']:.2f}× | {d['backup_over_s3_upload']:.2f}× | "
            f"{d['backup_rss_before_mb']:.0f} → {d['backup_peak_rss_mb']:.0f} MB |"
        )
    a = doc["archive"]
    peaks = [d["backup_peak_rss_mb"] for d in doc["dumps"]]
    growth = doc["dumps"][-1]["dump_mb"] / max(doc["dumps"][0]["dump_mb"], 1e-9)
    lines += [
        "",
        f"Peak RSS goal (flat, ≤ 200 MB): {max(peaks):.0f} MB at most, "
        f"{peaks[-1] - peaks[0]:+.0f} MB from a {growth:.1f}× larger dump "
        f"({'met' if max(peaks) <= 200 else 'NOT met'}). pg_dump is a process of its own "
        "and not counted.",
        "",
        "## Stream archive against the ordered-push limit (same run, same stream)",
        "",
        "| events | segments | archive MB | archive events/s | ordered push events/s | ratio |",
        "|---|---|---|---|---|---|",
        f"| {a['events']:,} | {a['segments']} | {a['archive_mb']:.1f} | "
        f"{a['archive_events_s']:,.0f} | {a['ordered_push_events_s']:,.0f} | "
        f"{a['archive_over_ordered_push']:.2f}× |",
        "",
    ]
    return "\n".join(lines)


def write_report(doc: dict[str, Any], out_dir: Path) -> Path:
    """Write backup-runner.md and backup-runner.json; return the Markdown path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "backup-runner.json").write_text(json.dumps(doc, indent=2) + "\n")
    md = out_dir / "backup-runner.md"
    md.write_text(markdown(doc))
    return md


if __name__ == "__main__" and sys.argv[1:] == ["--child"]:
    asyncio.run(_child_main())
