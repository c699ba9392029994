"""Settings of the market-ingest worker (environment prefix `MARKET_INGEST_`)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from fleet_runtime.settings import WorkerSettings


class MarketIngestSettings(WorkerSettings):
    """market-ingest settings: the shared worker settings plus its store connection."""

    model_config = SettingsConfigDict(env_prefix="MARKET_INGEST_", extra="ignore", frozen=True)

    redis_url: SecretStr = Field(
        SecretStr("redis://127.0.0.1:6379/0"), description="Redis URL (may carry a password)."
    )
    candle_intervals: tuple[str, ...] = Field(
        ("1m", "5m", "15m", "1h", "4h", "1d"), description="Candle intervals kept per symbol."
    )
    candles_kept: int = Field(500, ge=1, description="Closed candles kept per interval and symbol.")
    price_publish_min_interval_ms: int = Field(
        0, ge=0, description="Throttle of prices:{symbol} pub/sub messages (0: every tick)."
    )
