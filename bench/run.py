"""`./fleetw bench`: every worker against the limit and the naive baseline, in one run.

Each repetition starts fresh servers, loads the same events, measures the limit (raw
consume+ack and raw store writes), the worker end to end, and the naive baseline; the
report quotes medians over repetitions and the ratios between figures of the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import backups, history, limits, naive, storeaware, stores
from bench.replays import measure_replay
from bench.report import write_report
from bench.workers import measure_partitioned, measure_worker
from bench.workloads import (
    Workload,
    bot_lifecycles,
    market_ticks,
    recent_trade_fills,
    trade_fills,
)
from fleet_runtime.heap import DEFAULT_GEN0_THRESHOLD, gen0_threshold
from fleet_runtime.topology import apply, load_topology
from fleet_runtime.worker import connect_nats
from fleet_runtime.workers import discover_workers
from fleet_testing import Fleet
from fleet_testing.topologies import StreamsFile

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Sizes:
    """How much each measurement handles (quick mode shrinks all of them)."""

    events: int
    naive_events: int
    latency_seconds: int
    latency_rate: int
    reps: int
    store_rows: int
    """Documents or rows the raw store write measures."""


FULL = Sizes(
    events=200_000,
    naive_events=10_000,
    latency_seconds=6,
    latency_rate=1000,
    reps=3,
    store_rows=100_000,
)
QUICK = Sizes(
    events=20_000,
    naive_events=3_000,
    latency_seconds=3,
    latency_rate=1000,
    reps=1,
    store_rows=20_000,
)


@dataclass(frozen=True)
class Goals:
    """What a worker is asked to reach, checked in the report (never asserted in tests)."""

    over_bound: float
    """Events/s over the lower of the consume+ack limit and the store's raw write rate."""
    over_naive: float
    p99_ms: float
    rss_mb: float


@dataclass(frozen=True)
class Target:
    """How one worker is benchmarked."""

    worker: str
    stream: str
    filter_subject: str
    kinds: tuple[str, ...]
    workload: Callable[[int, int], Workload]
    naive: Callable[[str, str, int], Awaitable[float]]
    naive_store: str
    store_raw: Callable[[str, int], Awaitable[float]]
    """The store's raw bulk write of what the worker writes, driven the fastest way."""
    partition: tuple[str, list[int]] | None = None
    """How the stream splits for the scale-out run: (partitioned subjects, hashed words)."""
    store_raw_insert: Callable[[str, int], Awaitable[float]] | None = None
    """Where the worker inserts what ``store_raw`` upserts: the same write as inserts."""
    full: Sizes = FULL
    quick: Sizes = QUICK
    goals: Goals | None = None
    store_aware: Callable[[str, Workload, int], Awaitable[float]] | None = None
    """The rows the worker writes for the same events, by the fastest raw bulk path."""


TARGETS = [
    Target(
        "trade-recorder",
        "TRADES",
        "trade.>",
        ("nats", "postgres"),
        trade_fills,
        naive.trades_insert_each,
        "postgres",
        stores.postgres_copy,
        # By bot id: a bot's fills, orders and positions stay in one partition, in order.
        ("trade.*.*", [2]),
        store_aware=storeaware.trades_limit,
    ),
    Target(
        "bot-lifecycle",
        "BOTS",
        "bot.>",
        ("nats", "postgres"),
        bot_lifecycles,
        naive.bots_upsert_each,
        "postgres",
        stores.postgres_copy,
        # By bot id: a bot's events stay in one partition, in order (users are shared).
        ("bot.*.*", [2]),
        store_aware=storeaware.bots_limit,
    ),
    Target(
        "market-ingest",
        "MARKET",
        "market.tick.>",
        ("nats", "redis"),
        market_ticks,
        naive.ticks_hset_each,
        "redis",
        stores.redis_pipeline,
        # By symbol: each partition owns its symbols' keys in Redis.
        ("market.tick.*", [1]),
    ),
    Target(
        "analytics-projector",
        "TRADES",
        "trade.>",
        ("nats", "mongo"),
        recent_trade_fills,
        naive.fills_upsert_each,
        "mongo",
        stores.mongo_bulk_upsert,
        # No scale-out run: partitions by bot would share users' portfolio documents.
        None,
        store_raw_insert=stores.mongo_bulk_insert,
        # The MongoDB-wire server here writes ~1.5k upserts/s: a tenth of the others' sizes.
        full=Sizes(
            events=20_000,
            naive_events=1_000,
            latency_seconds=4,
            latency_rate=500,
            reps=3,
            store_rows=2_000,
        ),
        # At least two batches of the worker's 2000: the drain rate runs from the first commit.
        quick=Sizes(
            events=4_000,
            naive_events=300,
            latency_seconds=1,
            latency_rate=500,
            reps=1,
            store_rows=300,
        ),
        goals=Goals(over_bound=0.4, over_naive=5.0, p99_ms=100.0, rss_mb=150.0),
    ),
]


LIMIT_EVENTS = 60_000


def _store_url(fleet: Fleet, kind: str) -> str:
    return fleet.postgres.dsn() if kind == "postgres" else fleet.server(kind).url


def _server_pids(fleet: Fleet, kinds: tuple[str, ...]) -> dict[str, int]:
    pids = {}
    for kind in kinds:
        pid = fleet.server(kind).pid
        if pid is not None:
            pids["nats-server" if kind == "nats" else kind] = pid
    return pids


async def _one_rep(target: Target, sizes: Sizes, rep: int, logs: Path) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    # Wall-clock seconds of each phase, to keep the run's length in view.
    phases: dict[str, float] = {}
    mark = time.monotonic()

    def phase(name: str) -> None:
        nonlocal mark
        now = time.monotonic()
        phases[name] = round(now - mark, 1)
        mark = now

    figures["phase_seconds"] = phases
    workload = target.workload(sizes.events, rep + 1)
    latency_load = target.workload(sizes.latency_seconds * sizes.latency_rate, 1000 + rep)
    with Fleet(Path(tempfile.mkdtemp(prefix="fleet-bench-"))) as fleet:
        fleet.start(*target.kinds)
        fleet_env = fleet.env()
        nc = await connect_nats(fleet.nats.url, "bench")
        js = nc.jetstream()
        await apply(js, load_topology(ROOT / "streams.yaml"))
        await limits.load_stream(nc, js, workload)
        n = len(workload)
        phase("servers_and_load")
        # The benchmark's own data (every pre-encoded message) is frozen out of garbage
        # collection, so no measurement in this process pays for scanning it.
        gc.collect()
        gc.freeze()
        # The consume methods reach their steady rate within a few thousand messages:
        # the first LIMIT_EVENTS of the stream measure them (the worker drains all n).
        # They run with the collector set as a worker sets it: the limit stays the
        # fastest consumption measured.
        m = min(n, LIMIT_EVENTS)
        with gen0_threshold(DEFAULT_GEN0_THRESHOLD):
            figures["fetch_ack_each"] = await limits.fetch_loop(nc, js, target.stream, m)
            figures["callback_pull_ack_each"] = await limits.callback_pull(
                nc, js, target.stream, m, ack_all=False
            )
            figures["callback_pull_ack_all"] = await limits.callback_pull(
                nc, js, target.stream, m, ack_all=True
            )
            figures["ordered_push"] = await limits.ordered_push(
                nc, js, target.stream, target.filter_subject, m
            )
        figures["limit"] = max(figures["callback_pull_ack_each"], figures["callback_pull_ack_all"])
        phase("consume_limits")
        store_url = _store_url(fleet, target.naive_store)
        figures["store_raw"] = await target.store_raw(store_url, min(n, sizes.store_rows))
        if target.store_raw_insert is not None:
            figures["store_raw_insert"] = await target.store_raw_insert(
                store_url, min(n, sizes.store_rows)
            )
        if target.store_aware is not None:
            figures["store_aware"] = await target.store_aware(fleet.postgres.dsn(), workload, n)
        phase("store_raw")
        spec = discover_workers()[target.worker]
        if spec.implemented:
            run = await measure_worker(
                spec,
                fleet_env,
                js,
                stream=target.stream,
                durable=target.worker,
                backlog=n,
                latency_load=latency_load,
                latency_rate=sizes.latency_rate,
                streams_file=ROOT / "streams.yaml",
                log_path=logs / f"{target.worker}.log",
                server_pids=_server_pids(fleet, target.kinds),
            )
            figures["worker"] = asdict(run)
            phase("worker")
            if spec.replay is not None:
                figures["replay"] = asdict(
                    await measure_replay(spec, fleet_env, ROOT / "streams.yaml")
                )
                phase("replay")
        figures["naive"] = await target.naive(fleet.nats.url, store_url, sizes.naive_events)
        phase("naive")
        await nc.drain()
    gc.unfreeze()
    phase("servers_stop")
    if target.partition is not None and discover_workers()[target.worker].implemented:
        figures["scaleout"] = await _scaleout(target, workload, logs)
        phase("scaleout")
    return figures


async def _scaleout(target: Target, workload: Workload, logs: Path) -> dict[str, Any]:
    """The same events drained by one worker process per partition, on fresh servers."""
    assert target.partition is not None
    subjects, key = target.partition
    partitions = max(_cpus(), 2)
    tmp = Path(tempfile.mkdtemp(prefix="fleet-bench-"))
    streams = StreamsFile(ROOT / "streams.yaml").partition(
        target.stream, subjects=subjects, count=partitions, key=key, workers=[target.worker]
    )
    streams_file = streams.write(tmp / "streams.yaml")
    with Fleet(tmp / "servers") as fleet:
        fleet.start(*target.kinds)
        nc = await connect_nats(fleet.nats.url, "bench")
        js = nc.jetstream()
        await apply(js, load_topology(streams_file))
        await limits.load_stream(nc, js, workload)
        result = await measure_partitioned(
            discover_workers()[target.worker],
            fleet.env(),
            js,
            stream=target.stream,
            durable=target.worker,
            partitions=partitions,
            backlog=len(workload),
            streams_file=streams_file,
            log_dir=logs,
            server_pids=_server_pids(fleet, target.kinds),
        )
        await nc.drain()
    return result


def _median(reps: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in reps if key in r]
    return statistics.median(values) if values else None


def _summarise(target: Target, reps: list[dict[str, Any]]) -> dict[str, Any]:
    keys = (
        "fetch_ack_each",
        "callback_pull_ack_each",
        "callback_pull_ack_all",
        "ordered_push",
        "limit",
        "store_raw",
        "store_raw_insert",
        "store_aware",
        "naive",
    )
    out: dict[str, Any] = {k: _median(reps, k) for k in keys}
    workers = [r["worker"] for r in reps if "worker" in r]
    if workers:
        out["worker"] = statistics.median(w["events_per_s"] for w in workers)
        out["peak_rss_mb"] = max(w["peak_rss_mb"] for w in workers)
        busy = [w["machine_busy"] for w in workers if "machine_busy" in w]
        out["machine_busy"] = statistics.median(busy) if busy else None
        out["cpu_us_per_event"] = {
            k: statistics.median(w["cpu_us_per_event"][k] for w in workers)
            for k in workers[0]["cpu_us_per_event"]
        }
        lat = [w["latency_ms"] for w in workers if w["latency_ms"]]
        if lat:
            out["latency_ms"] = {
                k: statistics.median(x[k] for x in lat) for k in ("p50", "p99", "max")
            }
        # Ratios per repetition (same run, same data), then their median.
        out["worker_over_limit"] = statistics.median(
            r["worker"]["events_per_s"] / r["limit"] for r in reps if "worker" in r
        )
        out["worker_over_naive"] = statistics.median(
            r["worker"]["events_per_s"] / r["naive"] for r in reps if "worker" in r
        )
        out["worker_over_fetch"] = statistics.median(
            r["worker"]["events_per_s"] / r["fetch_ack_each"] for r in reps if "worker" in r
        )
        out["worker_over_store_raw"] = statistics.median(
            r["worker"]["events_per_s"] / r["store_raw"] for r in reps if "worker" in r
        )
        # The bound that binds: the lower of the consume+ack limit and the store's raw
        # write rate, taken within each repetition.
        out["worker_over_bound"] = statistics.median(
            r["worker"]["events_per_s"] / min(r["limit"], r["store_raw"])
            for r in reps
            if "worker" in r
        )
        binding = [_binding(r) for r in reps if "worker" in r]
        out["binding"] = max(set(binding), key=binding.count)
        inserts = [r for r in reps if "worker" in r and r.get("store_raw_insert")]
        if inserts:
            out["worker_over_store_raw_insert"] = statistics.median(
                r["worker"]["events_per_s"] / r["store_raw_insert"] for r in inserts
            )
        aware = [r for r in reps if "worker" in r and r.get("store_aware")]
        if aware:
            out["worker_over_store_aware"] = statistics.median(
                r["worker"]["events_per_s"] / r["store_aware"] for r in aware
            )
        out["per_repetition"] = [_rep_ratios(r) for r in reps if "worker" in r]
        replays = [r for r in reps if "replay" in r]
        if replays:
            out["replay"] = {
                "events_per_s": statistics.median(r["replay"]["events_per_s"] for r in replays),
                "total_events_per_s": statistics.median(
                    r["replay"]["total_events_per_s"] for r in replays
                ),
                "over_ordered_push": statistics.median(
                    r["replay"]["events_per_s"] / r["ordered_push"] for r in replays
                ),
                "over_worker": statistics.median(
                    r["replay"]["events_per_s"] / r["worker"]["events_per_s"] for r in replays
                ),
                "swap_pause_ms": statistics.median(r["replay"]["swap_pause_ms"] for r in replays),
            }
        scaleouts = [r for r in reps if "scaleout" in r]
        if scaleouts:
            out["scaleout"] = {
                "partitions": scaleouts[0]["scaleout"]["partitions"],
                "events_per_s": statistics.median(r["scaleout"]["events_per_s"] for r in scaleouts),
                "over_limit": statistics.median(
                    r["scaleout"]["events_per_s"] / r["limit"] for r in scaleouts
                ),
                "over_single": statistics.median(
                    r["scaleout"]["events_per_s"] / r["worker"]["events_per_s"] for r in scaleouts
                ),
                "over_store_aware": (
                    statistics.median(
                        r["scaleout"]["events_per_s"] / r["store_aware"] for r in scaleouts
                    )
                    if all(r.get("store_aware") for r in scaleouts)
                    else None
                ),
                "cpu_us_per_event": {
                    k: statistics.median(r["scaleout"]["cpu_us_per_event"][k] for r in scaleouts)
                    for k in scaleouts[0]["scaleout"]["cpu_us_per_event"]
                },
                "machine_busy": (
                    statistics.median(r["scaleout"]["machine_busy"] for r in scaleouts)
                    if all("machine_busy" in r["scaleout"] for r in scaleouts)
                    else None
                ),
            }
    else:
        out["worker"] = None
    out["implemented"] = bool(workers)
    return out


def _binding(rep: dict[str, Any]) -> str:
    return "store" if rep["store_raw"] < rep["limit"] else "consume+ack"


def _rep_ratios(rep: dict[str, Any]) -> dict[str, Any]:
    """One repetition's figures and its ratios (same servers, same data)."""
    worker = rep["worker"]["events_per_s"]
    return {
        "worker": worker,
        "limit": rep["limit"],
        "store_raw": rep["store_raw"],
        "naive": rep["naive"],
        "over_limit": worker / rep["limit"],
        "over_store_raw": worker / rep["store_raw"],
        "over_bound": worker / min(rep["limit"], rep["store_raw"]),
        "over_naive": worker / rep["naive"],
        "store_raw_insert": rep.get("store_raw_insert"),
        "over_store_raw_insert": (
            worker / rep["store_raw_insert"] if rep.get("store_raw_insert") else None
        ),
        "store_aware": rep.get("store_aware"),
        "over_store_aware": worker / rep["store_aware"] if rep.get("store_aware") else None,
        "scaleout": rep["scaleout"]["events_per_s"] if "scaleout" in rep else None,
        "binding": _binding(rep),
        "latency_ms": rep["worker"]["latency_ms"],
        "peak_rss_mb": rep["worker"]["peak_rss_mb"],
    }


async def main_async(quick: bool, only: list[str], out_dir: Path, reps: int | None = None) -> Path:
    if only == ["market-history"]:
        # Asked for by name only: loading a year of candles into secantusdb takes minutes.
        print("[bench] market-history export", flush=True)
        return history.write_report(await history.measure(quick), out_dir)
    started = time.monotonic()
    logs = Path(tempfile.mkdtemp(prefix="fleet-bench-logs-"))
    results: dict[str, Any] = {}
    for target in TARGETS:
        if only and target.worker not in only:
            continue
        sizes = target.quick if quick else target.full
        if reps is not None:
            sizes = replace(sizes, reps=reps)
        figures = []
        for rep in range(sizes.reps):
            print(f"[bench] {target.worker}: repetition {rep + 1}/{sizes.reps}", flush=True)
            figures.append(await _one_rep(target, sizes, rep, logs))
        results[target.worker] = {
            "summary": _summarise(target, figures),
            "sizes": asdict(sizes),
            "goals": None if target.goals is None else asdict(target.goals),
            "repetitions": figures,
        }
    machine = {
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpus": _cpus(),
        "memory_gib": _mem_gib(),
    }
    backup_md = None
    if not only or "backup-runner" in only:
        # Not a stream consumer like the others: its own figures and report file.
        print("[bench] backup-runner", flush=True)
        backup_doc = {**await backups.measure(quick), "machine": machine}
        backup_md = backups.write_report(backup_doc, out_dir)
        if only == ["backup-runner"]:
            return backup_md
    doc = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine,
        "sizes": asdict(QUICK if quick else FULL),
        "limit_events": LIMIT_EVENTS,
        "seconds": round(time.monotonic() - started, 1),
        "results": results,
        "worker_logs": str(logs),
        "backup_runner_report": None if backup_md is None else backup_md.name,
    }
    return write_report(doc, out_dir)


def _cpus() -> int:
    import os  # noqa: PLC0415

    return os.cpu_count() or 0


def _mem_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 1024 / 1024, 1)
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(prog="fleetw bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smoke run, about a minute")
    parser.add_argument("--only", action="append", default=[], help="worker to measure")
    parser.add_argument("--out", type=Path, default=None, help="results directory")
    parser.add_argument(
        "--reps", type=int, default=None, help="repetitions (default: 3, or 1 with --quick)"
    )
    args = parser.parse_args()
    out = args.out or (ROOT / "bench" / "results" / ("quick" if args.quick else "latest"))
    path = asyncio.run(main_async(args.quick, args.only, out, args.reps))
    print(path.read_text())


if __name__ == "__main__":
    main()
