"""Wiring of the analytics-projector worker: its spec for the `fleet` CLI and the runtime."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

from analytics_projector.handlers import DURABLE, subscriptions
from analytics_projector.retention import Retention
from analytics_projector.settings import AnalyticsProjectorSettings
from analytics_projector.store import MongoAnalyticsStore
from fleet_runtime.worker import serve
from fleet_runtime.workers import WorkerSpec

DEV_DATABASE = "tradefleet_analytics"


async def run(
    settings: AnalyticsProjectorSettings,
    partition: int | None,
    *,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[int], None] | None = None,
) -> None:
    """Consume TRADES, MARKET candles and BOTS until SIGTERM/SIGINT (or ``stop``)."""
    store = MongoAnalyticsStore.open(
        settings.mongo_url.get_secret_value(),
        settings.mongo_database,
        timeout_s=settings.mongo_timeout_s,
        retention=Retention(settings.price_history_1m_days, settings.price_history_wider_days),
    )
    try:
        await serve(
            worker=DURABLE,
            settings=settings,
            subscriptions=subscriptions(store),
            store_probe=store.probe,
            partition=partition,
            stop=stop,
            on_ready=on_ready,
        )
    finally:
        await store.close()


async def dev_setup(env: Mapping[str, str]) -> Mapping[str, str]:
    """For `fleet dev up`: point the worker at the launcher's MongoDB-wire server."""
    return {
        "ANALYTICS_PROJECTOR_MONGO_URL": env["FLEET_MONGO_URL"],
        "ANALYTICS_PROJECTOR_MONGO_DATABASE": DEV_DATABASE,
    }


WORKER = WorkerSpec(
    name="analytics-projector",
    store="MongoDB",
    summary="bot performance, portfolio snapshots, runs and price history",
    settings_cls=AnalyticsProjectorSettings,
    consumes=("trade.>", "market.candle.>", "bot.>"),
    run=run,
    dev_setup=dev_setup,
    replay="analytics_projector.replay:open_replay_target",
)
