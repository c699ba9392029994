"""`rebuild`: market-ingest's replay driven from Python (tests, scripts), with a progress
line a second; `fleet replay market-ingest` runs the same engine and target."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fleet_events import MARKET_STREAM
from fleet_runtime.replay import ReplayEngine, ReplayPlan
from fleet_runtime.replay.lock import holder_name
from fleet_runtime.worker import worker_nats
from market_ingest.replay import RedisReplayTarget
from market_ingest.settings import MarketIngestSettings


@dataclass
class RebuildResult:
    """What a rebuild did."""

    ticks: int = 0
    invalid: int = 0
    symbols: int = 0
    keys: int = 0
    position: int = 0
    switched: bool = False


class _Lines:
    """Engine progress as a line a second through ``progress``."""

    def __init__(self, progress: Callable[[str], None]) -> None:
        self._progress = progress
        self._started = self._last = time.monotonic()

    def update(self, applied: int, total: int) -> None:
        now = time.monotonic()
        if now - self._last >= 1.0:
            self._last = now
            rate = applied / max(now - self._started, 1e-9)
            self._progress(
                f"  {applied:,} ticks applied, {total - applied:,} to go, {rate:,.0f} ticks/s"
            )

    def note(self, text: str) -> None:
        self._progress(text)

    def close(self) -> None:
        return None


async def rebuild(
    settings: MarketIngestSettings,
    since: timedelta | None = None,
    progress: Callable[[str], None] = print,
) -> RebuildResult:
    """Rebuild every symbol seen in the stream (since ``since`` ago, or all) and switch over.

    Symbols with no tick in that range keep their live keys untouched.
    """
    target = RedisReplayTarget(settings)
    nc = await worker_nats(settings, "market-ingest-rebuild", user="market-ingest")
    start = None if since is None else datetime.now(UTC) - since
    scope = "all ticks" if start is None else f"ticks since {start}"
    progress(
        f"rebuilding market-ingest state from {MARKET_STREAM} ({scope}) into {target.keys.prefix}*"
    )
    try:
        async with target.lock(holder_name("market-ingest")):
            engine = ReplayEngine(
                nc, target, batch_size=settings.rebuild_batch_size, progress=_Lines(progress)
            )
            report = await engine.run(ReplayPlan(since=start))
    finally:
        await nc.drain()
        await target.close()
    result = RebuildResult(
        ticks=report.applied,
        invalid=report.invalid + report.rejected,
        symbols=len(target.store.symbols),
        keys=target.switched_keys,
        position=report.position,
        switched=report.swap is not None and target.switched_keys > 0,
    )
    late = {k[0]: int(v) for k, v in _samples(target.metrics.late_skipped).items() if v}
    progress(
        f"done: {result.ticks:,} ticks, {result.symbols} symbols, {result.keys} keys switched "
        f"at stream seq {result.position:,}; invalid ticks skipped {result.invalid}; "
        f"late ticks skipped {late or 0}"
    )
    return result


def _samples(counter: Any) -> dict[tuple[str, ...], float]:
    """Label values -> count of a labelled prometheus Counter."""
    out: dict[tuple[str, ...], float] = {}
    for family in counter.collect():
        for sample in family.samples:
            if sample.name.endswith("_total"):
                out[tuple(sample.labels.values())] = sample.value
    return out
