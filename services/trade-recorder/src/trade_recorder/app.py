"""Wiring of the trade-recorder worker: its spec for the `fleet` CLI and the runtime.

The store module (and asyncpg) is imported only when the worker runs, so the CLI can
list workers without their drivers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fleet_runtime.errors import ConfigError
from fleet_runtime.workers import WorkerSpec
from trade_recorder.settings import TradeRecorderSettings

DEV_DATABASE = "tradefleet"


async def run(settings: Any, partition: int | None) -> None:
    """Migrate if asked, open the store and consume TRADES until SIGTERM."""
    from fleet_runtime.worker import serve  # noqa: PLC0415
    from trade_recorder import handlers, store  # noqa: PLC0415

    if not isinstance(settings, TradeRecorderSettings):
        raise TypeError(f"expected TradeRecorderSettings, got {type(settings).__name__}")
    if settings.migrate_on_start:
        if settings.owner_dsn is None:
            raise ConfigError(
                "TRADE_RECORDER_MIGRATE_ON_START is set but TRADE_RECORDER_OWNER_DSN is not",
                fix="set TRADE_RECORDER_OWNER_DSN to a DSN of the schema owner role",
            )
        await store.run_migrations(settings.owner_dsn.get_secret_value())
    trade_store = await store.PostgresTradeStore.connect(settings.postgres_dsn.get_secret_value())
    try:
        await serve(
            worker=WORKER.name,
            settings=settings,
            subscriptions=handlers.subscriptions(trade_store),
            store_probe=trade_store.probe,
            partition=partition,
        )
    finally:
        await trade_store.close()


async def dev_setup(fleet_env: Mapping[str, str]) -> Mapping[str, str]:
    """For `fleet dev up`: database, role and migrations on the launcher's PostgreSQL."""
    from fleet_pgmigrate import dsn_with, ensure_database  # noqa: PLC0415
    from trade_recorder import store  # noqa: PLC0415

    admin = fleet_env["FLEET_POSTGRES_DSN"]
    await ensure_database(admin, DEV_DATABASE)
    owner = dsn_with(admin, database=DEV_DATABASE)
    await store.ensure_roles(owner)
    await store.run_migrations(owner)
    return {"TRADE_RECORDER_POSTGRES_DSN": dsn_with(owner, user=store.ROLE)}


WORKER = WorkerSpec(
    name="trade-recorder",
    store="PostgreSQL",
    summary="trades and positions (schema trading)",
    settings_cls=TradeRecorderSettings,
    consumes=("trade.>",),
    run=run,
    dev_setup=dev_setup,
)
