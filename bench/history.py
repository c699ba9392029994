"""`fleet candles` export against raw reads of the same data (market history, issue 24).

- **Cold**: a year of 1m candles (525,600) as backup-runner's monthly Parquet files on
  SeaweedFS; `fleet candles … --format csv` and `--format parquet` (stdout to /dev/null)
  against a raw pyarrow dataset read of the same files into an Arrow table.
- **Warm**: the same number of 1m candles as ``price_history`` documents on the
  MongoDB-wire server; `fleet candles` against a raw pymongo range read of the same
  documents (the cursor drained, documents decoded).
- **Peak RSS** of each `fleet candles` process (``ru_maxrss`` of the child).

Same run, fresh servers. ``./fleetw bench --only market-history [--quick]`` (results in
bench/results/latest/ or quick/) or ``python -m bench.history [--quick] [--out DIR]``
(bench/results/market-history/).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
from bson import Decimal128
from pymongo import ASCENDING, MongoClient

from backup_runner.candlefiles import Rows, series_files
from backup_runner.objects import MinioObjectStore
from fleet_events import CandleInterval
from fleet_history import s3_filesystem
from fleet_testing import Fleet

ROOT = Path(__file__).resolve().parents[1]
M1 = CandleInterval.M1
START = datetime(2025, 1, 1, tzinfo=UTC)
BUCKET = "bench-history"


def _candles(n: int) -> Rows:
    rows: Rows = {}
    price = Decimal("50000.00")
    for k in range(n):
        price += Decimal((k * 7919) % 201 - 100) / 100
        rows[START + timedelta(minutes=k)] = (
            price, price + Decimal("3.5"), price - Decimal("2.25"), price + Decimal("1.1"),
            Decimal("12.345678"), 17 + k % 50,
        )  # fmt: skip
    return rows


def _put_cold(fleet: Fleet, symbol: str, rows: Rows) -> int:
    env = fleet.s3.env()
    store = MinioObjectStore(
        endpoint=fleet.s3.endpoint, access_key=env["FLEET_S3_ACCESS_KEY"],
        secret_key=env["FLEET_S3_SECRET_KEY"], bucket=BUCKET, region=env["FLEET_S3_REGION"],
    )  # fmt: skip
    store.ensure_bucket()
    size = 0
    for key, data in series_files(M1, symbol, rows).items():
        store.put_bytes(key, data)
        size += len(data)
    return size


def _put_warm(url: str, symbol: str, rows: Rows) -> None:
    client: MongoClient[dict[str, Any]] = MongoClient(url)
    coll = client["tradefleet_analytics"]["price_history"]
    coll.create_index(
        [("symbol", ASCENDING), ("interval", ASCENDING), ("open_time", ASCENDING)], unique=True
    )
    batch: list[dict[str, Any]] = []
    for t, (o, h, lo, c, v, n) in rows.items():
        batch.append(
            {
                "_id": f"{symbol}|1m|{t.isoformat()}", "symbol": symbol, "interval": "1m",
                "open_time": t, "close_time": t + M1.duration, "open": Decimal128(o),
                "high": Decimal128(h), "low": Decimal128(lo), "close": Decimal128(c),
                "volume": Decimal128(v), "trade_count": n,
            }
        )  # fmt: skip
        if len(batch) == 5000:
            coll.insert_many(batch, ordered=False)
            batch = []
    if batch:
        coll.insert_many(batch, ordered=False)
    client.close()


def _raw_pyarrow(fleet: Fleet, symbol: str) -> tuple[float, int]:
    env = fleet.s3.env()
    fs = s3_filesystem(
        env["FLEET_S3_ENDPOINT"], env["FLEET_S3_ACCESS_KEY"], env["FLEET_S3_SECRET_KEY"],
        env["FLEET_S3_REGION"],
    )  # fmt: skip
    started = time.perf_counter()
    dataset = ds.dataset(f"{BUCKET}/history/candles", filesystem=fs, partitioning="hive")
    table = dataset.to_table(filter=(ds.field("interval") == "1m") & (ds.field("symbol") == symbol))
    return time.perf_counter() - started, table.num_rows


def _raw_mongo(url: str, symbol: str, n: int) -> tuple[float, int]:
    client: MongoClient[dict[str, Any]] = MongoClient(url, tz_aware=True)
    coll = client["tradefleet_analytics"]["price_history"]
    started = time.perf_counter()
    query = {
        "symbol": symbol, "interval": "1m",
        "open_time": {"$gte": START, "$lt": START + timedelta(minutes=n)},
    }  # fmt: skip
    count = sum(1 for _ in coll.find(query, batch_size=2000).sort("open_time", 1))
    seconds = time.perf_counter() - started
    client.close()
    return seconds, count


_CHILD = (
    "import atexit, runpy, sys\n"
    "def peak():\n"
    "    for line in open('/proc/self/status'):\n"
    "        if line.startswith('VmHWM:'):\n"
    "            sys.stderr.write(f'VmHWM {int(line.split()[1])}\\n')\n"
    "atexit.register(peak)\n"
    "sys.argv = ['fleet', *sys.argv[1:]]\n"
    "runpy.run_module('fleet_runtime.cli', run_name='__main__')\n"
)
"""Runs `fleet candles` and reports its own peak RSS (VmHWM of the process after exec:
``ru_maxrss`` of a child counts the bench process it was forked from)."""


def _export(env: dict[str, str], symbol: str, n: int, fmt: str, cold: bool) -> dict[str, Any]:
    args = [sys.executable, "-c", _CHILD, "candles", symbol, "1m",
            "--from", START.isoformat(), "--to", (START + timedelta(minutes=n)).isoformat(),
            "--format", fmt, "--cold" if cold else "--no-cold"]  # fmt: skip
    started = time.perf_counter()
    proc = subprocess.run(
        args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT, check=False
    )
    seconds = time.perf_counter() - started
    err = proc.stderr.decode()
    if proc.returncode != 0:
        raise RuntimeError(f"fleet candles failed ({proc.returncode}): {err}")
    served = sum(int(line.split(": ")[1].split(" ")[0]) for line in err.splitlines() if " candles " in line)  # fmt: skip
    peak_kb = next(int(line.split()[1]) for line in err.splitlines() if line.startswith("VmHWM "))
    return {"seconds": seconds, "rows": served, "peak_rss_mb": peak_kb / 1024}


def _start_cost(env: dict[str, str], symbol: str) -> float:
    """Seconds of a `fleet candles` run over a range no tier holds: process start, imports,
    one query per tier, no rows (the fixed cost in every export's time)."""
    args = [sys.executable, "-m", "fleet_runtime.cli", "candles", symbol, "1m",
            "--from", (START - timedelta(minutes=1)).isoformat(), "--to", START.isoformat()]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


async def measure(quick: bool, warm_candles: int | None = None) -> dict[str, Any]:
    """Every figure of one run, with its same-run raw baselines.

    ``warm_candles``: fewer candles for the warm rows (secantusdb loads ~1k documents/s on
    a busy machine: a year takes ~25 minutes).
    """
    n = 43_200 if quick else 525_600
    w = min(warm_candles or n, n)
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="fleet-bench-history-"))
    rows = _candles(n)
    cold_symbol, warm_symbol = (
        f"C{uuid.uuid4().hex[:6].upper()}",
        f"W{uuid.uuid4().hex[:6].upper()}",
    )
    with Fleet(tmp / "servers") as fleet:
        fleet.start("redis", "mongo", "s3")
        cold_bytes = await asyncio.to_thread(_put_cold, fleet, cold_symbol, rows)
        await asyncio.to_thread(
            _put_warm, fleet.mongo.url, warm_symbol, dict(itertools.islice(rows.items(), w))
        )
        env = {**os.environ, **fleet.env(), "FLEET_HISTORY_BUCKET": BUCKET}
        # As an installed command runs: with its modules' bytecode cached (an untimed run
        # writes the caches), not compiled again at every start.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        await asyncio.to_thread(_start_cost, env, cold_symbol)
        start_s = min([await asyncio.to_thread(_start_cost, env, cold_symbol) for _ in range(3)])
        raw_cold_s, raw_cold_rows = await asyncio.to_thread(_raw_pyarrow, fleet, cold_symbol)
        cold_csv = await asyncio.to_thread(_export, env, cold_symbol, n, "csv", True)
        cold_parquet = await asyncio.to_thread(_export, env, cold_symbol, n, "parquet", True)
        raw_warm_s, raw_warm_rows = await asyncio.to_thread(_raw_mongo, fleet.mongo.url, warm_symbol, w)  # fmt: skip
        warm_csv = await asyncio.to_thread(_export, env, warm_symbol, w, "csv", False)
    assert raw_cold_rows == cold_csv["rows"] == cold_parquet["rows"] == n
    assert raw_warm_rows == warm_csv["rows"] == w
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "candles": n,
        "warm_candles": w,
        "cold_mb": cold_bytes / 1024 / 1024,
        "start_s": start_s,
        "cold": {
            "raw_pyarrow_rows_s": n / raw_cold_s,
            "csv": _rates(cold_csv, n, start_s),
            "parquet": _rates(cold_parquet, n, start_s),
        },
        "warm": {
            "raw_pymongo_rows_s": w / raw_warm_s,
            "csv": _rates(warm_csv, w, start_s),
        },
        "cpus": os.cpu_count(),
        "load_1m": os.getloadavg()[0],
        "seconds": round(time.monotonic() - started, 1),
    }


def _rates(run: dict[str, Any], rows: int, start_s: float) -> dict[str, Any]:
    """Rows/s of an export, with and without its fixed start-up cost."""
    after = max(run["seconds"] - start_s, 1e-9)
    return {**run, "rows_s": rows / run["seconds"], "rows_s_after_start": rows / after}


def markdown(doc: dict[str, Any]) -> str:
    """The report."""
    c, w = doc["cold"], doc["warm"]
    raw_c, raw_w = c["raw_pyarrow_rows_s"], w["raw_pymongo_rows_s"]
    rows = [
        ("cold, `--format csv`", c["csv"], raw_c, "raw pyarrow dataset read"),
        ("cold, `--format parquet`", c["parquet"], raw_c, "raw pyarrow dataset read"),
        ("warm, `--format csv`", w["csv"], raw_w, "raw pymongo range read"),
    ]
    lines = [
        "# Market history export benchmark",
        "",
        f"{doc['date']}, {doc['cpus']} CPUs (1-minute load {doc['load_1m']:.1f}: shared machine); "
        f"{doc['candles']:,} 1m candles of one symbol ({doc['cold_mb']:.1f} MB of zstd Parquet "
        f"in monthly files on SeaweedFS; the first {doc['warm_candles']:,} of them as "
        "price_history documents on the MongoDB-wire server, secantusdb); fresh servers; "
        f"{doc['seconds']} s. "
        "`fleet candles` output goes to /dev/null; its time includes the process start "
        f"(bytecode cached), which a run over an empty range measures: {doc['start_s']:.2f} s "
        "(best of 3). The raw reads run inside the bench process (no start-up).",
        "",
        "| export | rows/s | raw baseline | raw rows/s | ratio | without start-up: rows/s, "
        "ratio | peak RSS |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, run, raw, what in rows:
        lines.append(
            f"| {name} | {run['rows_s']:,.0f} | {what} | {raw:,.0f} | "
            f"{run['rows_s'] / raw:.2f}× | {run['rows_s_after_start']:,.0f}, "
            f"{run['rows_s_after_start'] / raw:.2f}× | {run['peak_rss_mb']:.0f} MB |"
        )
    peak = max(r[1]["peak_rss_mb"] for r in rows)
    worst = min(r[1]["rows_s"] / r[2] for r in rows)
    lines += [
        "",
        f"Goals: ≥ 0.5× each raw read ({'met' if worst >= 0.5 else 'NOT met'}: lowest "
        f"{worst:.2f}×), peak RSS ≤ 150 MB ({'met' if peak <= 150 else 'NOT met'}: {peak:.0f} MB).",
        "",
    ]
    return "\n".join(lines)


def write_report(doc: dict[str, Any], out_dir: Path) -> Path:
    """Write market-history.md and market-history.json; return the Markdown path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "market-history.json").write_text(json.dumps(doc, indent=2) + "\n")
    md = out_dir / "market-history.md"
    md.write_text(markdown(doc))
    return md


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a month of candles, not a year")
    parser.add_argument("--warm-candles", type=int, default=None, help="fewer warm candles")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/market-history")
    args = parser.parse_args()
    doc = asyncio.run(measure(args.quick, args.warm_candles))
    print(write_report(doc, args.out).read_text())


if __name__ == "__main__":
    main()
