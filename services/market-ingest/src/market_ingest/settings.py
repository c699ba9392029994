"""Settings of the market-ingest worker (environment prefix `MARKET_INGEST_`)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from fleet_events import CandleInterval
from fleet_runtime.settings import WorkerSettings


class MarketIngestSettings(WorkerSettings):
    """market-ingest settings: the shared worker settings plus its store connection."""

    model_config = SettingsConfigDict(env_prefix="MARKET_INGEST_", extra="ignore", frozen=True)

    redis_url: SecretStr = Field(
        SecretStr("redis://127.0.0.1:6379/0"), description="Redis URL (may carry a password)."
    )
    batch_size: int = Field(
        4000,
        ge=1,
        le=10_000,
        description="Most ticks handed to one handler call: each symbol's Redis write and "
        "ticker figures are paid once per batch, so a backlog drains faster in large ones.",
    )
    batch_max_wait_ms: int = Field(
        2,
        ge=1,
        le=60_000,
        description="Longest a partial batch waits for more ticks: prices reach Redis this "
        "much sooner; under load batches fill anyway.",
    )
    candle_intervals: tuple[CandleInterval, ...] = Field(
        (
            CandleInterval.M1,
            CandleInterval.M5,
            CandleInterval.M15,
            CandleInterval.M30,
            CandleInterval.H1,
            CandleInterval.H4,
            CandleInterval.D1,
            CandleInterval.W1,
        ),
        min_length=1,
        description='Candle intervals kept per symbol (JSON list, e.g. ["1m","1h"]).',
    )
    candles_kept: int = Field(500, ge=1, description="Closed candles kept per interval and symbol.")
    price_publish_min_interval_ms: int = Field(
        0,
        ge=0,
        description="Throttle of prices:{symbol} pub/sub messages, in tick time (0: every tick).",
    )
    ticker_stale_after_s: int = Field(
        60,
        ge=1,
        description="A ticker whose last trade is older than this many seconds has "
        "`stale` 1 in its hash (set within a quarter of it, the next trade clears it).",
    )
    rebuild_batch_size: int = Field(
        5000, ge=1, le=100_000, description="Ticks applied per Redis write during `fleet replay`."
    )
