"""`fleet candles` export against raw reads of the same data (market history, issue 24).

- **Cold**: a year of 1m candles (525,600) as backup-runner's monthly Parquet files on
  SeaweedFS, exported as CSV and as Parquet, against a raw pyarrow dataset read of the
  same files into an Arrow table.
- **Warm**: the same number of 1m candles as ``price_history`` documents on the
  MongoDB-wire server, exported as CSV, against a raw pymongo range read of the same
  documents (the cursor drained, documents decoded).

Each export is measured twice, each time against a raw read run the same way:

- **library, in-process** (the primary ratio): ``fleet_history.write_series`` from the
  bench process, output to /dev/null, against the raw read in the same process (neither
  pays a process start; best of 3 for the cold tier);
- **command, fresh process**: `fleet candles` (bytecode cached, as an installed command)
  against a fresh ``python -c`` process that imports the raw reader's library and reads
  the same data (both pay interpreter start-up and imports).
- **Peak RSS** of each `fleet candles` process (VmHWM of the child).

Same run, fresh servers. ``./fleetw bench --only market-history [--quick]`` (results in
bench/results/latest/ or quick/) or ``python -m bench.history [--quick] [--out DIR]``
(bench/results/market-history/).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
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
from fleet_history import Report, s3_filesystem
from fleet_history.export import CsvSink, ParquetSink
from fleet_history.sources import Sources, opened_tiers
from fleet_history.stitch import write_series
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


_RAW_PYARROW = """
import os, sys, pyarrow.dataset as ds, pyarrow.fs as fs
endpoint = os.environ["FLEET_S3_ENDPOINT"]
s3 = fs.S3FileSystem(
    endpoint_override=endpoint.rpartition("://")[2], scheme=endpoint.partition("://")[0],
    access_key=os.environ["FLEET_S3_ACCESS_KEY"], secret_key=os.environ["FLEET_S3_SECRET_KEY"],
    region=os.environ["FLEET_S3_REGION"],
)
bars = ds.dataset(sys.argv[1] + "/history/candles", filesystem=s3, partitioning="hive")
table = bars.to_table(filter=(ds.field("interval") == "1m") & (ds.field("symbol") == sys.argv[2]))
print(table.num_rows)
"""

_RAW_PYMONGO = """
import datetime as dt, os, sys, pymongo
client = pymongo.MongoClient(os.environ["FLEET_MONGO_URL"], tz_aware=True)
start = dt.datetime.fromisoformat(sys.argv[2])
query = {"symbol": sys.argv[1], "interval": "1m", "open_time": {
    "$gte": start, "$lt": start + dt.timedelta(minutes=int(sys.argv[3]))}}
coll = client["tradefleet_analytics"]["price_history"]
print(sum(1 for _ in coll.find(query, batch_size=2000).sort("open_time", 1)))
"""


def _raw_process(env: dict[str, str], code: str, *args: str) -> tuple[float, int]:
    """Seconds and rows of a raw read in a fresh ``python -c`` process (start-up included)."""
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, check=True, cwd=ROOT
    )
    return time.perf_counter() - started, int(proc.stdout)


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


async def _library_export(env: dict[str, str], symbol: str, n: int, fmt: str, cold: bool) -> float:
    """Seconds of ``fleet_history.write_series`` in this process, output to /dev/null: the
    tiers opened from ``env`` as `fleet candles` opens them (``cold``: with the S3 tier)."""
    sources = Sources.from_env(env)
    if not cold:
        sources = dataclasses.replace(sources, s3_endpoint=None)
    report = Report()
    with open(os.devnull, "wb") as out:  # noqa: ASYNC230 - /dev/null never blocks
        started = time.perf_counter()
        async with opened_tiers(sources) as tiers:
            sink = CsvSink(out) if fmt == "csv" else ParquetSink(out)
            await write_series(tiers, sink, symbol, M1, START, START + timedelta(minutes=n), report)
            sink.close()
        seconds = time.perf_counter() - started
    if report.total != n:
        raise RuntimeError(f"the library exported {report.total} candles, not {n}")
    return seconds


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
    warm_from = START.isoformat()
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
        await asyncio.to_thread(_raw_process, env, _RAW_PYARROW, BUCKET, cold_symbol)
        start_s = min([await asyncio.to_thread(_start_cost, env, cold_symbol) for _ in range(3)])
        # Cold, best of 3 of each, the kinds interleaved so that the machine's load
        # changes touch them alike.
        cold: dict[str, list[Any]] = {}
        for _ in range(3):
            cold.setdefault("raw", []).append(await asyncio.to_thread(_raw_pyarrow, fleet, cold_symbol))  # fmt: skip
            cold.setdefault("raw_process", []).append(
                await asyncio.to_thread(_raw_process, env, _RAW_PYARROW, BUCKET, cold_symbol)
            )
            for fmt in ("csv", "parquet"):
                cold.setdefault(f"lib_{fmt}", []).append(
                    await _library_export(env, cold_symbol, n, fmt, cold=True)
                )
                cold.setdefault(f"cli_{fmt}", []).append(
                    await asyncio.to_thread(_export, env, cold_symbol, n, fmt, True)
                )
        raw_warm_s, raw_warm_rows = await asyncio.to_thread(_raw_mongo, fleet.mongo.url, warm_symbol, w)  # fmt: skip
        raw_warm_process_s, raw_warm_process_rows = await asyncio.to_thread(
            _raw_process, env, _RAW_PYMONGO, warm_symbol, warm_from, str(w)
        )
        lib_warm_s = await _library_export(env, warm_symbol, w, "csv", cold=False)
        warm_csv = await asyncio.to_thread(_export, env, warm_symbol, w, "csv", False)
    assert all(r == n for _, r in cold["raw"] + cold["raw_process"])
    assert all(run["rows"] == n for fmt in ("csv", "parquet") for run in cold[f"cli_{fmt}"])
    assert raw_warm_rows == raw_warm_process_rows == warm_csv["rows"] == w
    raw_s = min(t for t, _ in cold["raw"])
    raw_process_s = min(t for t, _ in cold["raw_process"])
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "candles": n,
        "warm_candles": w,
        "cold_mb": cold_bytes / 1024 / 1024,
        "start_s": start_s,
        "cold": {
            "raw_pyarrow_rows_s": n / raw_s,
            "raw_pyarrow_process_rows_s": n / raw_process_s,
            **{
                fmt: {
                    "library_rows_s": n / min(cold[f"lib_{fmt}"]),
                    **_rates(min(cold[f"cli_{fmt}"], key=lambda r: r["seconds"]), n, start_s),
                    "peak_rss_mb": max(r["peak_rss_mb"] for r in cold[f"cli_{fmt}"]),
                }
                for fmt in ("csv", "parquet")
            },
        },
        "warm": {
            "raw_pymongo_rows_s": w / raw_warm_s,
            "raw_pymongo_process_rows_s": w / raw_warm_process_s,
            "csv": {"library_rows_s": w / lib_warm_s, **_rates(warm_csv, w, start_s)},
        },
        "repetitions": {"cold": 3, "warm": 1},
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
    rows = [
        ("cold, csv", c["csv"], c["raw_pyarrow_rows_s"], c["raw_pyarrow_process_rows_s"]),
        ("cold, parquet", c["parquet"], c["raw_pyarrow_rows_s"], c["raw_pyarrow_process_rows_s"]),
        ("warm, csv", w["csv"], w["raw_pymongo_rows_s"], w["raw_pymongo_process_rows_s"]),
    ]
    lines = [
        "# Market history export benchmark",
        "",
        f"{doc['date']}, {doc['cpus']} CPUs (1-minute load {doc['load_1m']:.1f} at the end: "
        f"shared machine); {doc['candles']:,} 1m candles of one symbol ({doc['cold_mb']:.1f} MB "
        "of zstd Parquet in monthly files on SeaweedFS; the first "
        f"{doc['warm_candles']:,} of them as price_history documents on the MongoDB-wire "
        f"server, secantusdb); fresh servers; {doc['seconds']} s.",
        "",
        "- **library, in-process** (primary): `fleet_history.write_series` in the bench "
        "process, output to /dev/null, against the raw read in the same process (cold: pyarrow "
        "dataset → Arrow table; warm: pymongo range read, cursor drained). Neither pays a "
        "process start.",
        "- **`fleet candles`, fresh process**: the command (bytecode cached) against a fresh "
        "`python -c` process that imports pyarrow (or pymongo) and does the same raw read: "
        "both pay interpreter start-up and imports. The command's start-up alone (a run over "
        f"an empty range, best of 3): {doc['start_s']:.2f} s.",
        f"- Cold: best of {doc['repetitions']['cold']} of each, interleaved; warm: "
        f"{doc['repetitions']['warm']} run of each. Peak RSS: the `fleet candles` process "
        "(VmHWM), the highest of its runs.",
        "",
        "| export | library rows/s | raw in-process rows/s | **ratio** | `fleet candles` "
        "rows/s | raw fresh-process rows/s | ratio | peak RSS |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, run, raw, raw_process in rows:
        lines.append(
            f"| {name} | {run['library_rows_s']:,.0f} | {raw:,.0f} | "
            f"**{run['library_rows_s'] / raw:.2f}×** | {run['rows_s']:,.0f} | "
            f"{raw_process:,.0f} | {run['rows_s'] / raw_process:.2f}× | "
            f"{run['peak_rss_mb']:.0f} MB |"
        )
    peak = max(r[1]["peak_rss_mb"] for r in rows)
    worst_lib = min(r[1]["library_rows_s"] / r[2] for r in rows)
    worst_cli = min(r[1]["rows_s"] / r[3] for r in rows)
    lines += [
        "",
        f"Goals: ≥ 0.5× each raw read, library in-process: {_met(worst_lib >= 0.5)} (lowest "
        f"{worst_lib:.2f}×); `fleet candles` against a fresh raw process: "
        f"{_met(worst_cli >= 0.5)} (lowest {worst_cli:.2f}×); peak RSS ≤ 150 MB: "
        f"{_met(peak <= 150)} ({peak:.0f} MB).",
        "",
    ]
    return "\n".join(lines)


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


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
