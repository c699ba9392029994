"""Wiring of the bot-lifecycle worker: its spec for the `fleet` CLI and the runtime."""

from __future__ import annotations

from bot_lifecycle.settings import BotLifecycleSettings
from fleet_runtime.workers import WorkerSpec

WORKER = WorkerSpec(
    name="bot-lifecycle",
    store="PostgreSQL",
    summary="users, bots, deployments and audit log (schema lifecycle)",
    settings_cls=BotLifecycleSettings,
    consumes=("bot.>",),
    # Handlers are not written yet: the CLI reports the worker as not implemented.
    run=None,
)
