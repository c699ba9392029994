"""Wiring of the market-ingest worker: its spec for the `fleet` CLI and the runtime."""

from __future__ import annotations

from fleet_runtime.workers import WorkerSpec
from market_ingest.settings import MarketIngestSettings

WORKER = WorkerSpec(
    name="market-ingest",
    store="Redis",
    summary="live tickers, OHLCV candles and price pub/sub",
    settings_cls=MarketIngestSettings,
    consumes=("market.tick.>",),
    # Handlers are not written yet: the CLI reports the worker as not implemented.
    run=None,
)
