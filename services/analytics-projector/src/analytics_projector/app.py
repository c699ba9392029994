"""Wiring of the analytics-projector worker: its spec for the `fleet` CLI and the runtime."""

from __future__ import annotations

from analytics_projector.settings import AnalyticsProjectorSettings
from fleet_runtime.workers import WorkerSpec

WORKER = WorkerSpec(
    name="analytics-projector",
    store="MongoDB",
    summary="bot performance, portfolio snapshots and price history",
    settings_cls=AnalyticsProjectorSettings,
    consumes=("trade.>", "market.candle.>"),
    # Handlers are not written yet: the CLI reports the worker as not implemented.
    run=None,
)
