"""Run scenarios against one rig and reconcile each on its own keys."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from fleet_runtime.dlq import list_letters
from fleet_testing.chaos.backups import check_backups
from fleet_testing.chaos.publisher import PublishLog, Tamper, run_load
from fleet_testing.chaos.reconcile import StoreCheck, check_bots, check_ticks, check_trades
from fleet_testing.chaos.reconcile_analytics import check_analytics
from fleet_testing.chaos.rig import Rig
from fleet_testing.chaos.scenarios import LEAD_S, FaultLog, Scenario, Sizes
from fleet_testing.chaos.topology import chaos_streams
from fleet_testing.chaos.workload import Message, Workload

CORE_WORKERS = ["trade-recorder", "bot-lifecycle", "market-ingest"]
WORKERS = [*CORE_WORKERS, "analytics-projector", "backup-runner"]
"""Every worker the suite runs (``run_suite(workers=CORE_WORKERS)`` leaves analytics out:
its MongoDB-wire server is the slowest store, and CI runs it in one scenario only)."""
INJECT_VAR = "FLEET_CHAOS_INJECT"
"""Self-test of the suite only: ``phantom-ack`` records one fill per scenario as acked
without publishing it (a lost event), ``unrecorded-copy`` publishes one tick per scenario
twice, the copy under a new id and unrecorded (an event applied twice)."""


@dataclass
class ScenarioResult:
    """Everything the report says about one scenario."""

    scenario: Scenario
    log: PublishLog
    checks: list[StoreCheck]
    faults: list[str]
    dead_letters: int = 0
    truly_bad: int = 0
    bad_published: int = 0
    bad_missing: int = 0
    """Malformed messages the stream stored that no worker dead-lettered."""
    recover_s: float | None = None
    max_lag: int = 0
    drained: bool = True
    exited: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    drain_s: float = 0.0
    """From the end of the load until every consumer was drained."""

    @property
    def lost(self) -> int:
        """Expected effects missing, over every store (a valid event dead-lettered is one)."""
        return sum(c.lost for c in self.checks)

    @property
    def doubled(self) -> int:
        """Effects applied more than once, over every store."""
        return sum(c.doubled for c in self.checks)

    @property
    def exact(self) -> bool:
        """Every store exact, every dead letter truly bad, every bad message dead-lettered,
        every consumer drained and every worker process still running."""
        return (
            all(c.exact for c in self.checks)
            and self.dead_letters == self.truly_bad
            and self.bad_missing == 0
            and self.drained
            and not self.exited
        )


class _Injected:
    """The self-test bugs of ``INJECT_VAR`` (one per scenario)."""

    def __init__(self, kind: str) -> None:
        if kind not in ("phantom-ack", "unrecorded-copy"):
            raise ValueError(f"{INJECT_VAR}={kind!r}: use phantom-ack or unrecorded-copy")
        self.kind = kind
        self.done = False

    def phantom(self, message: Message) -> bool:
        hit = (
            self.kind == "phantom-ack"
            and not self.done
            and message.event is not None
            and message.event.type == "trade.executed"
        )
        self.done = self.done or hit
        return hit

    def unrecorded_copy(self, message: Message) -> Message | None:
        if self.kind != "unrecorded-copy" or self.done or message.event is None:
            return None
        if message.event.type != "market.tick":
            return None
        self.done = True
        return Message(message.subject, message.data, message.msg_id + "-copy", message.event)


def injected_bug() -> Tamper | None:
    """The self-test bug asked for in the environment, if any (never set in production)."""
    kind = os.environ.get(INJECT_VAR, "").strip()
    return _Injected(kind) if kind else None


async def run_scenario(
    rig: Rig, scenario: Scenario, tag: str, sizes: Sizes, seed: int
) -> ScenarioResult:
    """Load, fault, drain, reconcile."""
    started = time.monotonic()
    rng = random.Random(seed)  # noqa: S311 - reproducible traffic, not secrets
    workload = Workload(tag, seed=seed, mix=scenario.mix)
    log = PublishLog()
    faults = FaultLog()
    tamper = injected_bug()
    fault_done = asyncio.Event()

    async def inject() -> None:
        try:
            if scenario.fault is not None:
                await asyncio.sleep(LEAD_S)
                await scenario.fault(rig, sizes, rng, faults)
        finally:
            fault_done.set()

    def until() -> bool:
        now = time.monotonic()
        if now - started < sizes.load_s or log.published < scenario.min_messages:
            return False
        if not fault_done.is_set():
            return False
        return faults.healed is None or now - faults.healed >= sizes.tail_s

    fault_task = asyncio.create_task(inject())
    try:
        await run_load(rig.js, workload, rate=sizes.rate, until=until, log=log, tamper=tamper)
    finally:
        await fault_task
    loaded_at = time.monotonic()
    drained_at = await _drain(rig, sizes.drain_timeout_s)
    checks = await _reconcile(rig, workload, log)
    if faults.backups:
        checks += await check_backups(rig, faults.backups, tag, workload.bot_prefix, log.stored)
    result = ScenarioResult(scenario, log, checks, faults.actions)
    await _dead_letters(rig, log, result)
    samples = [s for s in rig.samples if s.at >= started]
    result.max_lag = max((s.total for s in samples), default=0)
    result.drained = drained_at is not None
    if faults.healed is not None:
        near_live = sizes.rate  # one second of traffic
        back = next((s.at for s in samples if s.at >= faults.healed and s.total <= near_live), None)
        end = back if back is not None else drained_at
        result.recover_s = None if end is None else max(0.0, end - faults.healed)
    result.exited = rig.dead_workers()
    result.duration_s = time.monotonic() - started
    result.drain_s = (drained_at or time.monotonic()) - loaded_at
    return result


async def _drain(rig: Rig, timeout: float) -> float | None:  # noqa: ASYNC109
    """Wait until every consumer is drained twice in a row; when it was, or None."""
    deadline = time.monotonic() + timeout
    streak = 0
    while time.monotonic() < deadline:
        streak = streak + 1 if await rig.drained() else 0
        if streak >= 2:
            return time.monotonic()
        await asyncio.sleep(0.25)
    return None


async def _reconcile(rig: Rig, workload: Workload, log: PublishLog) -> list[StoreCheck]:
    acks = log.stored
    checks = [
        await check_trades(
            rig.env_value("trade-recorder", "POSTGRES_DSN"), workload.bot_prefix, acks
        ),
        await check_bots(rig.env_value("bot-lifecycle", "POSTGRES_DSN"), workload.bot_prefix, acks),
        await check_ticks(rig.env_value("market-ingest", "REDIS_URL"), workload.symbols, acks),
    ]
    if "analytics-projector" in rig.worker_names:
        checks.append(
            await check_analytics(
                rig.env_value("analytics-projector", "MONGO_URL"),
                rig.env_value("analytics-projector", "MONGO_DATABASE"),
                workload.bot_prefix,
                acks,
            )
        )
    return checks


async def _dead_letters(rig: Rig, log: PublishLog, result: ScenarioResult) -> None:
    """Match each dead letter to what was published at its stream position; every worker
    that consumes a malformed message must dead-letter it."""
    ours = {(a.stream, a.seq): a for a in log.stored}
    bad = {
        (worker, a.stream, a.seq)
        for a in log.stored
        if a.message.bad is not None
        for worker in rig.consumers_of(a.stream, a.message.subject)
    }
    result.bad_published = len({(s, q) for _, s, q in bad})
    lettered: set[tuple[str, str, int]] = set()
    for letter in await list_letters(rig.js):
        if (letter.stream, letter.seq) not in ours:
            continue  # another scenario's
        key = (letter.worker, letter.stream, letter.seq)
        result.dead_letters += 1
        lettered.add(key)
        if key in bad:
            result.truly_bad += 1
    result.bad_missing = len(bad - lettered)


async def run_suite(
    scenarios: list[Scenario],
    sizes: Sizes,
    *,
    repo: Path,
    seed: int = 21,
    workers: list[str] | None = None,
) -> tuple[list[ScenarioResult], float]:
    """Start the rig with ``workers`` (default ``WORKERS``), run ``scenarios`` in order,
    stop everything; (results, seconds)."""
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="fleet-chaos-"))
    streams = chaos_streams(repo / "streams.yaml", work / "streams.yaml")
    rig = Rig(streams, list(workers or WORKERS), work / "logs")
    results: list[ScenarioResult] = []
    try:
        await rig.start()
        for n, scenario in enumerate(scenarios):
            print(f"chaos: {scenario.name} ...", flush=True)
            result = await run_scenario(rig, scenario, f"c{n}", sizes, seed + n)
            results.append(result)
            for label in result.exited:
                # As an orchestrator would: the next scenario starts with every worker up.
                await rig.wait_ready(rig.restart_worker(label))
            print(f"chaos: {scenario.name}: {summary_line(result)}", flush=True)
    finally:
        await rig.stop()
        if results and all(r.exact for r in results) and len(results) == len(scenarios):
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"chaos: worker logs kept in {work / 'logs'}", flush=True)
    return results, time.monotonic() - started


def summary_line(result: ScenarioResult) -> str:
    """One line per scenario for the console."""
    applied = ", ".join(f"{c.store} {c.applied}/{c.expected}" for c in result.checks)
    verdict = "exact" if result.exact else "NOT EXACT"
    notes = "; ".join(n for c in result.checks for n in c.notes)
    return (
        f"{verdict}: acked {len(result.log.stored)}, {applied}, lost {result.lost}, "
        f"doubled {result.doubled}, dead letters {result.dead_letters} "
        f"(truly bad {result.truly_bad}/{result.bad_published}) "
        f"in {result.duration_s:.0f}s (drain {result.drain_s:.1f}s)"
        + (f" [{notes}]" if notes else "")
    )
