"""`fleet replay` measured: events/s into the shadow, and how long the swap held readers.

The replay runs in the benchmark's process through the same engine and store adapter as
`fleet replay WORKER --all --yes`, after the worker drained the stream, so the rebuilt
state covers exactly what the live worker applied.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from fleet_pgmigrate import dsn_with
from fleet_pgmigrate.wiring import DEV_DATABASE
from fleet_runtime.dev import worker_env
from fleet_runtime.heap import DEFAULT_GEN0_THRESHOLD, gen0_threshold
from fleet_runtime.logs import configure_logging
from fleet_runtime.replay import ReplayEngine, ReplayPlan, replay_factory
from fleet_runtime.replay.lock import holder_name
from fleet_runtime.settings import load_settings
from fleet_runtime.worker import worker_nats
from fleet_runtime.workers import WorkerSpec


@dataclass
class ReplayRun:
    """What one replay measured."""

    events_per_s: float
    """Events applied per second from the first to the shadow caught up (as the live
    worker's rate runs from its first commit to its last)."""
    total_events_per_s: float
    """Events per second over the whole replay: shadow set-up and swap included."""
    events: int
    swap_pause_ms: float
    """How long the swap held the live tables/keys (readers and the live worker wait)."""


async def measure_replay(
    spec: WorkerSpec, fleet_env: Mapping[str, str], streams_file: Path
) -> ReplayRun:
    """Rebuild ``spec``'s store from the whole stream and swap it in."""
    # The worker's handlers log each batch at debug level: not in the benchmark's output.
    configure_logging("WARNING")
    env = await worker_env(spec, fleet_env, streams_file)
    prefix = str(spec.settings_cls.model_config.get("env_prefix", ""))
    if "FLEET_POSTGRES_DSN" in fleet_env:
        # The replay builds a shadow schema and moves tables: it runs as the owner.
        env[f"{prefix}OWNER_DSN"] = dsn_with(fleet_env["FLEET_POSTGRES_DSN"], database=DEV_DATABASE)
    overrides = {k[len(prefix) :].lower(): v for k, v in env.items() if k.startswith(prefix)}
    if "FLEET_NATS_CREDS" in fleet_env:
        # The replay connects as the worker's own NATS user, as `fleet replay` does.
        overrides.setdefault("nats_creds", fleet_env["FLEET_NATS_CREDS"])
    settings = load_settings(spec.settings_cls, **overrides)
    target = await replay_factory(spec)(settings)
    nc = await worker_nats(settings, f"{spec.name}-replay-bench", user=spec.name)
    try:
        async with target.lock(holder_name(spec.name)):
            # Collected as a worker (and `fleet replay`) sets the collector.
            with gen0_threshold(DEFAULT_GEN0_THRESHOLD):
                report = await ReplayEngine(nc, target).run(ReplayPlan())
    finally:
        await target.close()
        await nc.drain()
    if report.swap is None:
        raise RuntimeError(f"the replay of {spec.name} did not swap")
    return ReplayRun(
        events_per_s=report.apply_rate,
        total_events_per_s=report.rate,
        events=report.applied,
        swap_pause_ms=report.swap.pause_s * 1000,
    )
