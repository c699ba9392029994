"""A cold file missing or unreadable inside the range: `fleet candles` names the gap with
its time range and exits 3; the rest of the series still comes out.

The files are written with backup-runner's own encoder (its compaction is tested in
services/backup-runner/tests/test_cold_tier.py); the servers are real (SeaweedFS, Redis,
the MongoDB-wire server).
"""

from __future__ import annotations

import csv
import io
import os
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from backup_runner.candlefiles import Rows, encode
from backup_runner.objects import MinioObjectStore
from fleet_events import CandleInterval
from fleet_events.history import cold_key
from fleet_testing.replaying import run_fleet
from fleet_testing.servers import MongoServer, RedisServer, S3Server

D1 = CandleInterval.D1


def series() -> dict[int, Rows]:
    """1d candles every 10 days from mid-2023 to late 2025, by year."""
    by_year: dict[int, Rows] = {}
    day = datetime(2023, 6, 1, tzinfo=UTC)
    while day < datetime(2025, 12, 1, tzinfo=UTC):
        price = Decimal(100) + Decimal(day.toordinal() % 97) / 4
        by_year.setdefault(day.year, {})[day] = (
            price, price + 2, price - 1, price + 1, Decimal("12.5"), 40,
        )  # fmt: skip
        day += timedelta(days=10)
    return by_year


def opened(out: str) -> list[datetime]:
    return [datetime.fromisoformat(r["open_time"]) for r in csv.DictReader(io.StringIO(out))]


async def test_a_missing_or_unreadable_cold_file_is_a_gap_with_its_time_range(
    s3_server: S3Server, redis_server: RedisServer, mongo_server: MongoServer
) -> None:
    symbol = f"G{uuid.uuid4().hex[:8].upper()}"
    bucket = f"history-{uuid.uuid4().hex[:10]}"
    env3 = s3_server.env()
    store = MinioObjectStore(
        endpoint=s3_server.endpoint, access_key=env3["FLEET_S3_ACCESS_KEY"],
        secret_key=env3["FLEET_S3_SECRET_KEY"], bucket=bucket, region=env3["FLEET_S3_REGION"],
    )  # fmt: skip
    store.ensure_bucket()
    years = series()
    for year, rows in years.items():
        store.put_bytes(cold_key(D1, symbol, datetime(year, 1, 1, tzinfo=UTC)), encode(rows))
    every = sorted(t for rows in years.values() for t in rows)
    env = {
        **os.environ, **s3_server.env(), **redis_server.env(), **mongo_server.env(),
        "FLEET_HISTORY_BUCKET": bucket,
    }  # fmt: skip
    args = ["candles", symbol, "1d", "--from", "2023-01-01", "--to", "2026-01-01"]

    whole = await run_fleet(args, env)
    assert whole.code == 0, whole.err
    assert opened(whole.out) == every
    assert whole.err.startswith(f"cold (S3 Parquet): {len(every)} candles")

    middle = cold_key(D1, symbol, datetime(2024, 1, 1, tzinfo=UTC))
    store.put_bytes(middle, b"PAR1 not a parquet file PAR1")
    damaged = await run_fleet(args, env)
    assert damaged.code == 3, damaged.err
    assert "Traceback" not in damaged.err
    assert opened(damaged.out) == [t for t in every if t.year != 2024]
    gap = damaged.err.strip().splitlines()[-1]
    assert gap.startswith(
        "gap in cold (S3 Parquet): 2024-01-01T00:00:00+00:00 .. 2025-01-01T00:00:00+00:00: "
        f"{middle} is unreadable"
    ), damaged.err

    store.delete(middle)
    missing = await run_fleet(
        ["candles", symbol, "1d", "--from", "2024-03-01", "--to", "2024-04-01"], env
    )
    assert missing.code == 3, missing.err
    assert missing.out.strip() == "open_time,open,high,low,close,volume,trade_count,closed"
    assert missing.err.strip().splitlines()[-1] == (
        "gap in cold (S3 Parquet): 2024-03-01T00:00:00+00:00 .. 2024-04-01T00:00:00+00:00: "
        f"{middle} is missing"
    )

    # Before the first file and after the last: outside the tier, not a gap.
    older = await run_fleet(
        ["candles", symbol, "1d", "--from", "2019-01-01", "--to", "2020-01-01"], env
    )
    assert older.code == 0, older.err
    assert f"no 1d candles of {symbol} in that range in any tier" in older.err

    # An S3 that does not answer: one line naming it and the fix, no traceback.
    down = await run_fleet(args, {**env, "FLEET_S3_ENDPOINT": "http://127.0.0.1:9"})
    assert down.code == 2, down.err
    assert "Traceback" not in down.err
    assert down.err.startswith("error: cold tier (S3 http://127.0.0.1:9, bucket ")
    assert "--no-cold" in down.err
