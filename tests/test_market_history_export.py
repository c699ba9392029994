"""`fleet candles` over a year of 1m candles in the cold tier, on SeaweedFS and the
MongoDB-wire server: the cold stretch leaves as Arrow batches (no Python object per
candle) and must give exactly the rows pyarrow reads from the same files, in CSV, JSON
lines and Parquet; the warm tier's newer candles take over at their first period, and a
missing month is still a gap (exit 3).
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from bson import Decimal128
from pymongo import MongoClient

from backup_runner.candlefiles import Rows, series_files
from backup_runner.objects import MinioObjectStore
from fleet_events import CandleInterval
from fleet_events.history import cold_key
from fleet_history import s3_filesystem
from fleet_testing import Fleet

SYMBOL = "YEARUSDT"
BUCKET = "history-export"
M1 = CandleInterval.M1
START = datetime(2025, 1, 1, tzinfo=UTC)
END = datetime(2026, 1, 1, tzinfo=UTC)
WARM_FROM = END - timedelta(minutes=30)  # price_history holds the year's last 30 minutes
LOST = datetime(2025, 6, 1, tzinfo=UTC)  # June's file is missing


def year() -> Rows:
    """525,600 candles; prices with trailing zeros, now and then a volume of 1E-7."""
    rows: Rows = {}
    price = Decimal("50000.00")
    for k in range((END - START) // M1.duration):
        price += Decimal((k * 7919) % 201 - 100) / 100
        volume = Decimal("0.0000001") if k % 1000 == 7 else Decimal("12.345600")
        rows[START + timedelta(minutes=k)] = (
            price, price + Decimal("3.5"), price - Decimal("2.25"), price + Decimal("1.10"),
            volume, 17 + k % 50,
        )  # fmt: skip
    return rows


def put(fleet: Fleet, rows: Rows) -> None:
    """Cold: the monthly files as backup-runner writes them, June left out; warm: the last
    30 minutes with other trade counts (so the rows show which tier served them)."""
    env = fleet.s3.env()
    store = MinioObjectStore(
        endpoint=fleet.s3.endpoint, access_key=env["FLEET_S3_ACCESS_KEY"],
        secret_key=env["FLEET_S3_SECRET_KEY"], bucket=BUCKET, region=env["FLEET_S3_REGION"],
    )  # fmt: skip
    store.ensure_bucket()
    for key, data in series_files(M1, SYMBOL, rows).items():
        if key != cold_key(M1, SYMBOL, LOST):
            store.put_bytes(key, data)
    client: MongoClient[dict[str, Any]] = MongoClient(fleet.mongo.url)
    docs = [
        {
            "_id": f"{SYMBOL}|1m|{t.isoformat()}",
            "symbol": SYMBOL,
            "interval": "1m",
            "open_time": t,
            "close_time": t + M1.duration,
            "open": Decimal128(o),
            "high": Decimal128(h),
            "low": Decimal128(lo),
            "close": Decimal128(c),
            "volume": Decimal128(v),
            "trade_count": n + 1000,
        }
        for t, (o, h, lo, c, v, n) in rows.items()
        if t >= WARM_FROM
    ]
    client["tradefleet_analytics"]["price_history"].insert_many(docs)
    client.close()


def cold_table(fleet: Fleet) -> pa.Table:
    """The cold files as pyarrow's dataset reader sees them (not fleet_history)."""
    env = fleet.s3.env()
    fs = s3_filesystem(
        env["FLEET_S3_ENDPOINT"], env["FLEET_S3_ACCESS_KEY"], env["FLEET_S3_SECRET_KEY"],
        env["FLEET_S3_REGION"],
    )  # fmt: skip
    dataset = ds.dataset(f"{BUCKET}/history/candles", filesystem=fs, partitioning="hive")
    wanted = (ds.field("symbol") == SYMBOL) & (ds.field("open_time") < WARM_FROM)
    table = dataset.to_table(filter=wanted)
    return table.drop_columns(["interval", "symbol"]).sort_by("open_time")


def text(value: Decimal) -> str:
    """A decimal as the export writes it: no trailing zeros, no exponent above 1."""
    shown = value.normalize()
    exponent = shown.as_tuple().exponent
    return str(shown.quantize(Decimal(1)) if isinstance(exponent, int) and exponent > 0 else shown)


def expected_rows(table: pa.Table, rows: Rows) -> list[list[str]]:
    """CSV rows: the cold table's, then the warm tier's last 30 minutes."""
    out = []
    for r in table.to_pylist():
        values = [r[c] for c in ("open", "high", "low", "close", "volume")]
        opened = f"{r['open_time']:%Y-%m-%dT%H:%M:%SZ}"
        out.append([opened, *map(text, values), str(r["trade_count"]), "True"])
    for t, (o, h, lo, c, v, n) in rows.items():
        if t >= WARM_FROM:
            prices = map(str, (o, h, lo, c, v))
            out.append([f"{t:%Y-%m-%dT%H:%M:%SZ}", *prices, str(n + 1000), "True"])
    return out


async def export(env: dict[str, str], fmt: str, out: Path) -> tuple[int, str]:
    args = [sys.executable, "-m", "fleet_runtime.cli", "candles", SYMBOL, "1m", "--from",
            START.isoformat(), "--to", END.isoformat(), "--format", fmt]  # fmt: skip
    with out.open("wb") as sink:
        proc = await asyncio.to_thread(
            subprocess.run, args, env=env, stdout=sink, stderr=subprocess.PIPE, timeout=300,
            check=False,
        )  # fmt: skip
    return proc.returncode, proc.stderr.decode()


async def test_a_year_of_cold_candles_exports_columnar_exactly(
    isolated_fleet: Fleet, tmp_path: Path
) -> None:
    isolated_fleet.start("redis", "mongo", "s3")
    rows = year()
    await asyncio.to_thread(put, isolated_fleet, rows)
    table = cold_table(isolated_fleet)
    june = 30 * 24 * 60
    assert table.num_rows == len(rows) - june - 30
    want = expected_rows(table, rows)
    env = {**os.environ, **isolated_fleet.env(), "FLEET_HISTORY_BUCKET": BUCKET}

    code, err = await export(env, "csv", tmp_path / "year.csv")
    assert code == 3, err
    lines = err.strip().splitlines()
    gap = (
        f"gap in cold (S3 Parquet): {LOST.isoformat()} .. 2025-07-01T00:00:00+00:00: "
        f"history/candles/interval=1m/symbol={SYMBOL}/2025-06.parquet is missing"
    )
    last_cold = WARM_FROM - M1.duration
    last = END - M1.duration
    assert lines == [
        f"cold (S3 Parquet): {table.num_rows} candles {START.isoformat()} .. "
        f"{last_cold.isoformat()}",
        f"warm (MongoDB): 30 candles {WARM_FROM.isoformat()} .. {last.isoformat()}",
        gap,
    ], err
    with (tmp_path / "year.csv").open(newline="") as f:
        got = list(csv.reader(f))
    assert got[0] == [
        "open_time",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "trade_count",
        "closed",
    ]
    assert got[1:] == want

    code, err = await export(env, "json", tmp_path / "year.jsonl")
    assert code == 3, err
    with (tmp_path / "year.jsonl").open() as f:
        got_json = [list(map(str, json.loads(line).values())) for line in f]
    assert got_json == want

    code, err = await export(env, "parquet", tmp_path / "year.parquet")
    assert code == 3, err
    written = pq.read_table(tmp_path / "year.parquet")
    cold_part = written.slice(0, table.num_rows)
    assert cold_part.drop_columns(["closed"]).cast(table.schema).equals(table)
    assert written.column("closed").to_pylist() == [True] * written.num_rows
    assert written.column("trade_count").to_pylist()[table.num_rows :] == [
        n + 1000 for t, (*_, n) in rows.items() if t >= WARM_FROM
    ]
    meta = pq.ParquetFile(tmp_path / "year.parquet").metadata
    assert max(meta.row_group(g).num_rows for g in range(meta.num_row_groups)) <= 10_000
