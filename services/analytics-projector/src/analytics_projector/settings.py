"""Settings of the analytics-projector worker (environment prefix `ANALYTICS_PROJECTOR_`)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from fleet_runtime.settings import WorkerSettings


class AnalyticsProjectorSettings(WorkerSettings):
    """analytics-projector settings: the shared worker settings plus its store connection."""

    model_config = SettingsConfigDict(
        env_prefix="ANALYTICS_PROJECTOR_", extra="ignore", frozen=True
    )

    mongo_url: SecretStr = Field(
        SecretStr("mongodb://127.0.0.1:27017"), description="MongoDB URL (may carry credentials)."
    )
    mongo_database: str = Field("tradefleet_analytics", description="Database of the read models.")
