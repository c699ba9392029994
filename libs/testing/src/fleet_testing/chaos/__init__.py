"""`fleet chaos`: the whole fleet on real servers, faults injected under load, reconciled.

Development tooling: the `fleet` CLI imports this package only when `fleet chaos` runs,
and no worker imports it. ``run`` starts a 3-node NATS cluster (streams at replicas 3),
PostgreSQL, Redis and the workers as processes, then runs each scenario: a steady
publisher, one kind of fault, a drain, and an exact comparison of every store with what
the acks say it must hold. The table goes to docs/reliability.md.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from fleet_testing.chaos.report import render
from fleet_testing.chaos.scenarios import FULL, QUICK, SCENARIOS, Scenario
from fleet_testing.chaos.suite import INJECT_VAR, ScenarioResult, run_suite

__all__ = ["INJECT_VAR", "SCENARIOS", "ScenarioResult", "run", "select"]


def select(names: list[str]) -> list[Scenario]:
    """The scenarios called ``names`` (all when empty); ValueError names the unknown one."""
    if not names:
        return list(SCENARIOS)
    known = {s.name: s for s in SCENARIOS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown scenario {unknown[0]!r} (scenarios: {', '.join(known)})")
    return [known[n] for n in names]


def run(
    *, repo: Path, quick: bool, names: list[str], out: Path | None, command: str
) -> list[ScenarioResult]:
    """Run the suite; write the page to ``out`` when given. Returns every scenario's result."""
    sizes = QUICK if quick else FULL
    results, seconds = asyncio.run(run_suite(select(names), sizes, repo=repo))
    if out is not None:
        out.write_text(render(results, sizes, command=command, quick=quick, seconds=seconds))
    print(f"chaos: {len(results)} scenarios in {seconds:.0f}s", flush=True)
    return results
