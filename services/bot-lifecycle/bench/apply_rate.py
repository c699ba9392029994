"""Rate of ``PostgresBotStore.apply`` on prebuilt batches (run by hand, not in tests).

    uv run python services/bot-lifecycle/bench/apply_rate.py [--events 200000] [--batch 500]
        [--compare path/to/other_store.py] [--runs 1]

Bots created, deployed, started and stopped (4 events a bot, in stream order, as the
benchmark's workload), applied to a fresh migrated database per run. ``--compare`` loads
another copy of the store module and measures it against a fresh database in the same
process, alternating runs. A private PostgreSQL comes from fleet-testing's launcher.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import ModuleType
from typing import Any

from fleet_events import BotCreated, BotDeployed, BotStarted, BotStopped, Event, new_event
from fleet_pgmigrate import dsn_with
from fleet_runtime.delivery import Batch
from fleet_runtime.logs import configure_logging
from fleet_testing import Fleet
from fleet_testing.batches import Sequencer


def lifecycles(n: int) -> list[Event[Any]]:
    start = datetime(2026, 1, 5, tzinfo=UTC)
    out: list[Event[Any]] = []
    for b in range(n // 4):
        bot, dep = f"bench-bot-{b}", f"dep-{b}"
        at = start + timedelta(milliseconds=b)
        for payload in (
            BotCreated(
                bot_id=bot,
                version=1,
                user_id=f"user-{b % 50}",
                name=f"bot {b}",
                type="realtime",
                config={"grid": 10},
                tags=["bench"],
                max_position_size=Decimal("5"),
            ),
            BotDeployed(bot_id=bot, version=2, deployment_id=dep, runtime="python3.11"),
            BotStarted(bot_id=bot, version=3, deployment_id=dep),
            BotStopped(bot_id=bot, version=4, deployment_id=dep, reason="bench"),
        ):
            out.append(new_event(payload, source="bench", time=at))
    return out


def load(path: str, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


async def run(module: ModuleType, fleet: Fleet, db: str, batches: list[Batch[Any]]) -> float:
    admin = fleet.postgres.create_database(db)
    await module.ensure_roles(admin)
    await module.run_migrations(admin)
    store = await module.PostgresBotStore.connect(dsn_with(admin, user=module.ROLE))
    n = sum(len(b) for b in batches)
    started = time.perf_counter()
    for b in batches:
        await store.apply(b)
    elapsed = time.perf_counter() - started
    await store.close()
    return n / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--compare", help="path of another store.py to measure alongside")
    args = parser.parse_args()
    configure_logging("WARNING")
    events = lifecycles(args.events)
    seq = Sequencer("BOTS", "bot-lifecycle")
    batches = [seq.batch(events[i : i + args.batch]) for i in range(0, len(events), args.batch)]
    from bot_lifecycle import store as current  # noqa: PLC0415

    stores = {"current": current}
    if args.compare:
        stores["compare"] = load(args.compare, "bench_compare_store")
    rates: dict[str, list[float]] = {k: [] for k in stores}
    with Fleet(None, use_external=False) as fleet:
        fleet.start("postgres")
        for i in range(args.runs):
            for name, module in stores.items():
                rate = await run(module, fleet, f"bench_{name}_{i}", batches)
                rates[name].append(rate)
                print(f"run {i} {name}: {rate:,.0f} events/s", flush=True)
    for name, values in rates.items():
        print(f"{name}: median {statistics.median(values):,.0f} events/s over {len(values)} runs")


if __name__ == "__main__":
    asyncio.run(main())
