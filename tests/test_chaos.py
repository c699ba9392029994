"""The fault suite on real servers: a representative quick part ends exact, and the suite
fails when a bug makes it lose or double an event (it can fail)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fleet_testing.chaos import INJECT_VAR, select
from fleet_testing.chaos.scenarios import QUICK
from fleet_testing.chaos.suite import CORE_WORKERS, run_suite

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_worker_kills_leader_loss_and_malformed_input_lose_nothing() -> None:
    scenarios = select(["kill-workers", "nats-leader", "malformed"])
    results, _ = await run_suite(scenarios, QUICK, repo=ROOT, workers=CORE_WORKERS)
    by_name = {r.scenario.name: r for r in results}
    assert list(by_name) == ["kill-workers", "nats-leader", "malformed"]
    for result in results:
        assert result.drained, result.scenario.name
        assert (result.lost, result.doubled) == (0, 0), [c.notes for c in result.checks]
        assert all(c.exact and c.applied == c.expected > 0 for c in result.checks)
        assert len(result.log.stored) > 200
        assert result.exited == []
        assert result.exact
    kills = by_name["kill-workers"]
    assert kills.faults == ["kill -9 x1 each: trade-recorder, bot-lifecycle, market-ingest"]
    assert kills.recover_s is not None
    leader = by_name["nats-leader"]
    assert leader.faults[0].startswith("kill -9 TRADES leader nats-cluster-n")
    # Every malformed message the stream stored is dead-lettered, and nothing else is.
    bad = by_name["malformed"]
    assert bad.bad_published == 4
    assert bad.dead_letters == bad.truly_bad == 4
    assert bad.bad_missing == 0
    for result in (kills, leader):
        assert result.dead_letters == 0


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_the_suite_fails_and_says_so_when_an_acked_event_is_lost(tmp_path: Path) -> None:
    """A fill recorded as acked that the stream never got: the reconciler must miss it."""
    out = tmp_path / "reliability.md"
    args = ["chaos", "--quick", "--scenario", "steady", "--out", str(out)]
    proc = subprocess.run(
        [sys.executable, "-m", "fleet_runtime.cli", *args],
        cwd=ROOT,
        env={**os.environ, INJECT_VAR: "phantom-ack"},
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "chaos: steady: NOT EXACT" in proc.stdout
    # trade-recorder and analytics-projector each miss the fill.
    assert "lost 2, doubled 0" in proc.stdout
    assert "lost trade c0-t" in proc.stdout
    assert "analytics lost trade c0-t" in proc.stdout
    assert "a scenario is NOT EXACT" in proc.stderr
    page = out.read_text()
    row = next(line for line in page.splitlines() if line.startswith("| steady |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[11:13] == ["2", "0"]  # lost, doubled
    assert cells[-1] == "**NOT EXACT**"


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_the_suite_reports_an_event_applied_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    """A tick published again under a new id behind the reconciler's back: doubled."""
    monkeypatch.setenv(INJECT_VAR, "unrecorded-copy")
    results, _ = await run_suite(select(["steady"]), QUICK, repo=ROOT)
    [result] = results
    ticks = next(c for c in result.checks if c.store == "ticks")
    assert (ticks.lost, ticks.doubled) == (0, 1)
    assert result.doubled == 1
    assert not result.exact


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_analytics_and_backups_reconciled_with_malformed_input_and_kills() -> None:
    """analytics-projector and backup-runner join the rig (CI runs them in these two
    scenarios: the MongoDB-wire server is the slowest store, too slow here for the kill
    scenario's catch-up waits). analytics' read models are reconciled on their own, and
    every malformed fill or bot event is dead-lettered by it as well as by trade-recorder
    or bot-lifecycle; backups taken while the projecting workers are killed restore to
    exactly the state at their own checkpoints."""
    results, _ = await run_suite(select(["malformed", "backup"]), QUICK, repo=ROOT)
    bad, backup = results
    analytics = next(c for c in bad.checks if c.store == "analytics")
    assert (analytics.lost, analytics.doubled, analytics.mismatched) == (0, 0, 0), analytics
    assert analytics.applied == analytics.expected > 50
    assert bad.bad_published == 4
    assert bad.bad_missing == 0
    # Ticks have one reader, fills and bot events two.
    assert bad.dead_letters == bad.truly_bad > 4
    assert bad.exact, [c.notes for c in bad.checks]

    restored = {c.store: c for c in backup.checks if c.store.startswith("restored")}
    assert sorted(restored) == ["restored analytics", "restored bots", "restored trades"]
    for check in restored.values():
        assert check.exact, check
        assert check.applied == check.expected > 0, check
    assert backup.faults[0].startswith("backups of postgres, mongodb, stream while kill -9")
    assert backup.exact, [c.notes for c in backup.checks]
