"""Wiring of the trade-recorder worker: its spec for the `fleet` CLI and the runtime."""

from __future__ import annotations

from fleet_pgmigrate.wiring import PostgresWorker
from fleet_runtime.workers import WorkerSpec
from trade_recorder.settings import TradeRecorderSettings

POSTGRES_WORKER = PostgresWorker(
    worker="trade-recorder",
    env_prefix="TRADE_RECORDER_",
    store_module="trade_recorder.store",
    store_class="PostgresTradeStore",
    handlers_module="trade_recorder.handlers",
    partial_refusal=(
        "positions and orders fold every fill since the order or position opened, so "
        "events before the start point are needed"
    ),
)

WORKER = WorkerSpec(
    name="trade-recorder",
    store="PostgreSQL",
    summary="trades and positions (schema trading)",
    settings_cls=TradeRecorderSettings,
    consumes=("trade.>",),
    run=POSTGRES_WORKER.run,
    dev_setup=POSTGRES_WORKER.dev_setup,
    replay=POSTGRES_WORKER.replay_target,
)
