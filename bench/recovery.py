"""Crash recovery of trade-recorder: time from a restart after kill -9 to its first commit.

`.venv/bin/python -m bench.recovery --label NAME [--first-backoff 30s] [--kills 3]` loads a
backlog of fills on fresh servers, runs the worker, kills it with SIGKILL at evenly spaced
points of the backlog and restarts it at once each time. It reports per restart the
seconds from the new process's spawn to its first commit (the consumer's ack floor
moving; the worker acks right after committing) and the seconds from the last restart
(or the start) until everything is acked. Each run is stored under its label in
bench/results/latest/recovery.json, and recovery.md is rewritten from all of them. The
code measured is the interpreter's (run it with another checkout's venv and
``PYTHONPATH`` to measure that one).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import tempfile
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from nats.js.client import JetStreamContext

from bench import limits
from bench.workloads import trade_fills
from fleet_runtime.dev import spawn_worker, worker_env
from fleet_runtime.topology import apply, load_topology
from fleet_runtime.worker import connect_nats
from fleet_runtime.workers import get_worker
from fleet_testing import Fleet
from fleet_testing.topologies import StreamsFile

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "latest"
WORKER, STREAM = "trade-recorder", "TRADES"


async def _acked(js: JetStreamContext) -> int:
    info = await js.consumer_info(STREAM, WORKER)
    return info.ack_floor.stream_seq


async def _until(js: JetStreamContext, at_least: int, within_s: float) -> float:
    """Seconds until the ack floor reaches ``at_least`` (polled every 10 ms)."""
    start = time.perf_counter()
    while (await _acked(js)) < at_least:
        if time.perf_counter() - start > within_s:
            raise RuntimeError(f"ack floor below {at_least} after {within_s} s")
        await asyncio.sleep(0.01)
    return time.perf_counter() - start


async def _scenario(
    first_backoff: str | None, kills: int, events: int, workdir: Path
) -> dict[str, Any]:
    """One run on fresh servers: restart-to-first-commit per kill and the final drain."""
    streams = StreamsFile(ROOT / "streams.yaml")
    if first_backoff is not None:
        streams.set_backoff(WORKER, STREAM, [first_backoff, "1m", "5m", "15m", "1h"])
    streams_file = streams.write(workdir / "streams.yaml")
    spec = get_worker(WORKER)
    with Fleet(workdir / "servers") as fleet:
        fleet.start("nats", "postgres")
        fleet_env: Mapping[str, str] = fleet.env()
        nc = await connect_nats(fleet.nats.url, "bench-recovery")
        js = nc.jetstream()
        await apply(js, load_topology(streams_file))
        await limits.load_stream(nc, js, trade_fills(events, 7))
        env = await worker_env(spec, fleet_env, streams_file)
        restarts: list[float] = []
        spawned: list[float] = []
        with (workdir / "worker.log").open("ab") as log:
            proc = await spawn_worker(WORKER, env, log)
            try:
                for k in range(1, kills + 1):
                    await _until(js, events * k // (kills + 2), 300)
                    proc.send_signal(signal.SIGKILL)
                    await proc.wait()
                    before = await _acked(js)
                    spawned.append(time.time())
                    proc = await spawn_worker(WORKER, env, log)
                    restarts.append(await _until(js, before + 1, 300))
                drain = await _until(js, events, 600)
            finally:
                if proc.returncode is None:
                    proc.send_signal(signal.SIGTERM)
                    await asyncio.wait_for(proc.wait(), 30)
        await nc.close()
    orphans, starting = [], []
    for line in (workdir / "worker.log").read_text().splitlines():
        if '"orphans_committed"' in line:
            record = json.loads(line)
            orphans.append(f"{record['count']} in {record['groups']}")
        if '"worker_starting"' in line:
            stamp = json.loads(line)["timestamp"].replace("Z", "+00:00")
            starting.append(datetime.fromisoformat(stamp).timestamp())
    # Python start-up and imports: from the spawn to the worker's first log line.
    imports = [round(t - s, 2) for s, t in zip(spawned, starting[1:], strict=False)]
    return {
        "orphans_committed_in_transactions": orphans,
        "of_which_process_start_s": imports,
        "first_backoff": first_backoff or "streams.yaml",
        "kills": kills,
        "events": events,
        "restart_to_first_commit_s": [round(x, 2) for x in restarts],
        "last_restart_to_drained_s": round(drain, 2),
    }


def _markdown(runs: list[dict[str, Any]]) -> str:
    lines = [
        "# Crash recovery: trade-recorder after kill -9",
        "",
        "Backlog of fills in TRADES; SIGKILL at evenly spaced points of it and an immediate "
        "restart; `restart→first commit` is from the new process's spawn to the consumer's "
        "ack floor moving; `drained` is from the last restart (or the start) until all acked; "
        "`process start` is from the spawn to the worker's first log line (Python start-up "
        "and imports of `fleet worker run`); the last column is from the restarted workers' "
        "`orphans_committed` log lines (a worker before growing groups logs none: it "
        "committed each orphan alone).",
        "",
        "| run | first backoff | kills | events | restart→first commit (s) | of which "
        "process start (s) | drained (s) | orphans committed in (transactions) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        firsts = ", ".join(f"{x:.2f}" for x in run["restart_to_first_commit_s"]) or "—"
        starts = ", ".join(f"{x:.2f}" for x in run.get("of_which_process_start_s", [])) or "—"
        lines.append(
            f"| {run['label']} | {run['first_backoff']} | {run['kills']} | {run['events']} "
            f"| {firsts} | {starts} | {run['last_restart_to_drained_s']:.2f} "
            f"| {', '.join(run.get('orphans_committed_in_transactions', [])) or '—'} |"
        )
    return "\n".join(lines) + "\n"


async def _main(label: str, first_backoff: str | None, kills: int, events: int) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="fleet-recovery-"))
    run = {"label": label, **await _scenario(first_backoff, kills, events, workdir)}
    print(json.dumps(run))
    RESULTS.mkdir(parents=True, exist_ok=True)
    stored = RESULTS / "recovery.json"
    runs = json.loads(stored.read_text()) if stored.exists() else []
    runs = [r for r in runs if r["label"] != label] + [run]
    stored.write_text(json.dumps(runs, indent=2) + "\n")
    (RESULTS / "recovery.md").write_text(_markdown(runs))


def main() -> None:
    """Parse the options and run one scenario."""
    parser = argparse.ArgumentParser(prog="bench.recovery", description=__doc__)
    parser.add_argument("--label", required=True, help="name of this run in the results")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument(
        "--first-backoff", help="trade-recorder's first backoff instead of streams.yaml's"
    )
    args = parser.parse_args()
    asyncio.run(_main(args.label, args.first_backoff, args.kills, args.events))


if __name__ == "__main__":
    main()
