"""Wiring of the trade-recorder worker: its spec for the `fleet` CLI and the runtime."""

from __future__ import annotations

from fleet_runtime.workers import WorkerSpec
from trade_recorder.settings import TradeRecorderSettings

WORKER = WorkerSpec(
    name="trade-recorder",
    store="PostgreSQL",
    summary="trades and positions (schema trading)",
    settings_cls=TradeRecorderSettings,
    consumes=("trade.>",),
    # Handlers are not written yet: the CLI reports the worker as not implemented.
    run=None,
)
