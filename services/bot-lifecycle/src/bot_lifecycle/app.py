"""Wiring of the bot-lifecycle worker: its spec for the `fleet` CLI and the runtime.

The store module (and asyncpg) is imported only when the worker runs, so the CLI can
list workers without their drivers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot_lifecycle.settings import BotLifecycleSettings
from fleet_runtime.errors import ConfigError
from fleet_runtime.workers import WorkerSpec

DEV_DATABASE = "tradefleet"


async def run(settings: Any, partition: int | None) -> None:
    """Migrate if asked, open the store and consume BOTS until SIGTERM."""
    from bot_lifecycle import handlers, store  # noqa: PLC0415
    from fleet_runtime.worker import serve  # noqa: PLC0415

    if not isinstance(settings, BotLifecycleSettings):
        raise TypeError(f"expected BotLifecycleSettings, got {type(settings).__name__}")
    if settings.migrate_on_start:
        if settings.owner_dsn is None:
            raise ConfigError(
                "BOT_LIFECYCLE_MIGRATE_ON_START is set but BOT_LIFECYCLE_OWNER_DSN is not",
                fix="set BOT_LIFECYCLE_OWNER_DSN to a DSN of the schema owner role",
            )
        await store.run_migrations(settings.owner_dsn.get_secret_value())
    bot_store = await store.PostgresBotStore.connect(settings.postgres_dsn.get_secret_value())
    try:
        await serve(
            worker=WORKER.name,
            settings=settings,
            subscriptions=handlers.subscriptions(bot_store),
            store_probe=bot_store.probe,
            partition=partition,
        )
    finally:
        await bot_store.close()


async def dev_setup(fleet_env: Mapping[str, str]) -> Mapping[str, str]:
    """For `fleet dev up`: database, role and migrations on the launcher's PostgreSQL."""
    from bot_lifecycle import store  # noqa: PLC0415
    from fleet_pgmigrate import dsn_with, ensure_database  # noqa: PLC0415

    admin = fleet_env["FLEET_POSTGRES_DSN"]
    await ensure_database(admin, DEV_DATABASE)
    owner = dsn_with(admin, database=DEV_DATABASE)
    await store.ensure_roles(owner)
    await store.run_migrations(owner)
    return {"BOT_LIFECYCLE_POSTGRES_DSN": dsn_with(owner, user=store.ROLE)}


WORKER = WorkerSpec(
    name="bot-lifecycle",
    store="PostgreSQL",
    summary="users, bots, deployments and audit log (schema lifecycle)",
    settings_cls=BotLifecycleSettings,
    consumes=("bot.>",),
    run=run,
    dev_setup=dev_setup,
)
