"""Wiring of the bot-lifecycle worker: its spec for the `fleet` CLI and the runtime."""

from __future__ import annotations

from bot_lifecycle.settings import BotLifecycleSettings
from fleet_pgmigrate.wiring import PostgresWorker
from fleet_runtime.workers import WorkerSpec

POSTGRES_WORKER = PostgresWorker(
    worker="bot-lifecycle",
    env_prefix="BOT_LIFECYCLE_",
    store_module="bot_lifecycle.store",
    store_class="PostgresBotStore",
    handlers_module="bot_lifecycle.handlers",
    partial_refusal=(
        "a bot's row, deployments and audit versions follow from every event since "
        "bot.created, so events before the start point are needed"
    ),
)

WORKER = WorkerSpec(
    name="bot-lifecycle",
    store="PostgreSQL",
    summary="users, bots, deployments and audit log (schema lifecycle)",
    settings_cls=BotLifecycleSettings,
    consumes=("bot.>",),
    run=POSTGRES_WORKER.run,
    dev_setup=POSTGRES_WORKER.dev_setup,
    replay=POSTGRES_WORKER.replay_target,
)
