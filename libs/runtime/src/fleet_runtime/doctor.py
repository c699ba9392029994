"""`fleet doctor`: everything a worker needs before it can start, checked and explained.

Per worker: its settings load, NATS answers with JetStream (credentials accepted), the
streams and durables it uses match streams.yaml, and the service's own store checks
(``WorkerSpec.diagnose_store``: reachable, credentials, migrations). Every check only
reads; each failure carries its fix.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from nats.js.client import JetStreamContext

from fleet_runtime.diagnosis import CheckResult
from fleet_runtime.errors import UserError
from fleet_runtime.settings import WorkerSettings, load_settings
from fleet_runtime.startup import Server, describe, server_of
from fleet_runtime.topology import Topology, load_topology, open_jetstream
from fleet_runtime.topology import plan as plan_topology
from fleet_runtime.topology.plan import Action, Change
from fleet_runtime.workers import WorkerSpec

CHECK_TIMEOUT_S = 5.0
APPLY_FIX = "run `fleet topology apply` with this streams file (workers never create streams)"


@dataclass(frozen=True)
class WorkerReport:
    """The checks of one worker, in the order they ran."""

    worker: str
    results: list[CheckResult]

    @property
    def ok(self) -> bool:
        """Whether every check passed."""
        return all(r.ok for r in self.results)


def _nats_failure(server: Server, exc: BaseException) -> CheckResult:
    text = str(exc)
    if "authorization" in text.lower() or "authentication" in text.lower():
        fix = f"put the right user and password (or token) in {server.setting}"
    else:
        fix = f"start nats-server with JetStream, or point {server.setting} at a running one"
    return CheckResult.failed(f"NATS {server.address} ({server.setting})", text, fix)


def _topology_results(
    spec: WorkerSpec, topology: Topology, changes: list[Change]
) -> list[CheckResult]:
    """Drift of the worker's streams and consumers, and whether its durables exist."""
    streams = {c.stream for c in topology.consumers_for(spec.name)}
    durables = {d for c in topology.consumers_for(spec.name) for d in c.durable_names()}
    mine = [c for c in changes if c.stream in streams]
    missing_streams = [c.stream for c in mine if c.consumer is None and c.action is Action.CREATE]
    missing = [
        f"{c.consumer} on {c.stream}"
        for c in mine
        if c.consumer in durables and c.action is Action.CREATE
    ]
    differ = [
        f"{c.consumer or c.stream}: " + ", ".join(f.field for f in c.fields)
        for c in mine
        if c.action in (Action.UPDATE, Action.RECREATE)
        and (c.consumer is None or c.consumer in durables)
    ]
    results = []
    if missing_streams:
        results.append(
            CheckResult.failed(
                "topology applied", "streams missing: " + ", ".join(missing_streams), APPLY_FIX
            )
        )
    if differ:
        results.append(CheckResult.failed("topology has no drift", "; ".join(differ), APPLY_FIX))
    elif not missing_streams:
        results.append(CheckResult.passed("topology has no drift", ", ".join(sorted(streams))))
    if missing:
        results.append(CheckResult.failed("durables exist", ", ".join(missing), APPLY_FIX))
    elif not missing_streams:
        results.append(CheckResult.passed("durables exist", ", ".join(sorted(durables))))
    return results


async def _plan(js: JetStreamContext, topology: Topology) -> list[Change]:
    return (await plan_topology(js, topology)).changes


async def _nats_and_topology(spec: WorkerSpec, settings: WorkerSettings) -> list[CheckResult]:
    server = server_of(settings, "nats_url", "NATS")
    try:
        topology = load_topology(settings.streams_file)
    except UserError as exc:
        return [CheckResult.failed("streams file", str(exc), exc.fix or "")]
    try:
        async with open_jetstream(settings.nats_url, request_timeout=CHECK_TIMEOUT_S / 2) as js:
            nats_ok = CheckResult.passed(f"NATS {server.address} ({server.setting})")
            changes = await asyncio.wait_for(_plan(js, topology), CHECK_TIMEOUT_S)
    except UserError as exc:
        return [_nats_failure(server, exc)]
    except Exception as exc:
        return [_nats_failure(server, exc if str(exc) else Exception(describe(exc)))]
    return [nats_ok, *_topology_results(spec, topology, changes)]


async def diagnose_worker(spec: WorkerSpec) -> WorkerReport:
    """Every check of one worker (settings first: without them nothing else can run)."""
    try:
        settings = load_settings(spec.settings_cls)
    except UserError as exc:
        return WorkerReport(spec.name, [CheckResult.failed("settings", str(exc), exc.fix or "")])
    results = [CheckResult.passed("settings")]
    if not isinstance(settings, WorkerSettings):
        return WorkerReport(spec.name, results)
    results += await _nats_and_topology(spec, settings)
    if spec.diagnose_store is not None:
        try:
            results += await asyncio.wait_for(spec.diagnose_store(settings), 3 * CHECK_TIMEOUT_S)
        except TimeoutError:
            results.append(
                CheckResult.failed(
                    f"{spec.store} checks",
                    f"no answer within {3 * CHECK_TIMEOUT_S:.0f} s",
                    "check that the store server is up and reachable from here",
                )
            )
    return WorkerReport(spec.name, results)


async def diagnose(specs: Sequence[WorkerSpec]) -> list[WorkerReport]:
    """The reports of ``specs``, checked one worker at a time (in the given order)."""
    return [await diagnose_worker(spec) for spec in specs]


def report_lines(reports: Sequence[WorkerReport]) -> list[str]:
    """The ✓/✗ table: one row per check, the fix under each ✗."""
    width = max((len(r.worker) for r in reports), default=6)
    lines = []
    for report in reports:
        for result in report.results:
            mark = "✓" if result.ok else "✗"
            detail = f": {result.detail}" if result.detail else ""
            lines.append(f"{report.worker:<{width}}  {mark} {result.check}{detail}")
            if not result.ok and result.fix:
                lines.append(f"{'':<{width}}      fix: {result.fix}")
    failed = sum(1 for r in reports for x in r.results if not x.ok)
    lines.append(
        f"{failed} check{'s' if failed != 1 else ''} failed" if failed else "all checks passed"
    )
    return lines
