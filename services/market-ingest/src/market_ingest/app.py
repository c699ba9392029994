"""Wiring of the market-ingest worker: its spec for the `fleet` CLI and the runtime."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from datetime import timedelta

from redis.asyncio import Redis

from fleet_runtime.diagnosis import CheckResult
from fleet_runtime.publisher import EventPublisher
from fleet_runtime.worker import serve, worker_nats
from fleet_runtime.workers import WorkerSpec
from market_ingest.handlers import DURABLE, TickHandler
from market_ingest.logic import Rules
from market_ingest.metrics import MarketIngestMetrics
from market_ingest.settings import MarketIngestSettings
from market_ingest.staleness import StaleTickers
from market_ingest.store import RedisMarketStore


def rules_of(settings: MarketIngestSettings) -> Rules:
    """The state rules the settings ask for."""
    return Rules(
        intervals=settings.candle_intervals,
        candles_kept=settings.candles_kept,
        price_min_interval_ms=settings.price_publish_min_interval_ms,
        ticker_stale_after_ms=settings.ticker_stale_after_s * 1000,
    )


def open_redis(settings: MarketIngestSettings) -> Redis:
    """A Redis client (connects on first use)."""
    return Redis.from_url(
        settings.redis_url.get_secret_value(), socket_timeout=10, socket_connect_timeout=5
    )


async def run(
    settings: MarketIngestSettings,
    partition: int | None,
    *,
    metrics: MarketIngestMetrics | None = None,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[int], None] | None = None,
) -> None:
    """Consume ticks until SIGTERM/SIGINT (or ``stop``); ``on_ready`` gets the health port."""
    metrics = metrics or MarketIngestMetrics()
    redis = open_redis(settings)
    # `serve` keeps its NATS connection to itself: candles go out on a second one.
    nc = await worker_nats(settings, f"{DURABLE}-candles", user=DURABLE)
    stale = StaleTickers(redis, timedelta(seconds=settings.ticker_stale_after_s))
    sweeping = asyncio.create_task(stale.run())
    try:
        store = RedisMarketStore(redis, rules_of(settings), metrics=metrics)
        handler = TickHandler(store, EventPublisher(nc.jetstream()), metrics)

        async def probe() -> None:
            await store.ping()
            await handler.recover()

        await serve(
            worker=DURABLE,
            settings=settings,
            subscriptions=[handler.subscription()],
            store_probe=probe,
            partition=partition,
            stop=stop,
            on_ready=on_ready,
            registry=metrics.registry,
        )
    finally:
        sweeping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeping
        with contextlib.suppress(Exception):
            await nc.drain()
        await redis.aclose()


async def diagnose(settings: MarketIngestSettings) -> list[CheckResult]:
    """For `fleet doctor` (``market_ingest.diagnosis``, imported when asked)."""
    from market_ingest.diagnosis import diagnose_redis  # noqa: PLC0415 - imports this module

    return await diagnose_redis(settings)


async def dev_setup(env: Mapping[str, str]) -> Mapping[str, str]:
    """For `fleet dev up`: point the worker at the launcher's Redis."""
    return {"MARKET_INGEST_REDIS_URL": env["FLEET_REDIS_URL"]}


WORKER = WorkerSpec(
    name="market-ingest",
    store="Redis",
    summary="live tickers, OHLCV candles and price pub/sub",
    settings_cls=MarketIngestSettings,
    consumes=("market.tick.>",),
    publishes=("market.candle",),
    run=run,
    dev_setup=dev_setup,
    diagnose_store=diagnose,
    replay="market_ingest.replay:open_replay_target",
)
