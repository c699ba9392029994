"""Settings of the analytics-projector worker (environment prefix `ANALYTICS_PROJECTOR_`)."""

from __future__ import annotations

import re

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict
from pymongo.errors import ConfigurationError, InvalidURI
from pymongo.uri_parser import parse_uri

from fleet_runtime.settings import WorkerSettings

# MongoDB refuses these in database names (and names longer than 63 bytes).
_BAD_DATABASE_CHARS = re.compile(r'[/\\. "$*<>:|?\x00]')


class AnalyticsProjectorSettings(WorkerSettings):
    """analytics-projector settings: the shared worker settings plus its store connection."""

    model_config = SettingsConfigDict(
        env_prefix="ANALYTICS_PROJECTOR_", extra="ignore", frozen=True
    )

    batch_size: int = Field(
        2000,
        ge=1,
        le=10_000,
        description="Most events handed to one handler call. Each batch costs a fixed "
        "number of MongoDB round trips and one write per touched bot and day, whatever its "
        "size; each consumer's max_ack_pending (streams.yaml) still caps a batch.",
    )
    mongo_url: SecretStr = Field(
        SecretStr("mongodb://127.0.0.1:27017"),
        description="MongoDB URL (may carry credentials); a replica set: transactions need one.",
    )
    mongo_database: str = Field("tradefleet_analytics", description="Database of the read models.")
    mongo_timeout_s: float = Field(
        5.0, gt=0, description="Seconds to wait for MongoDB before the worker pauses and retries."
    )

    price_history_1m_days: int = Field(
        30, ge=1, description="Days a 1m candle stays in price_history (warm tier)."
    )
    price_history_wider_days: int = Field(
        365, ge=1, description="Days a 5m-or-wider candle stays in price_history (warm tier)."
    )

    @field_validator("mongo_url")
    @classmethod
    def _valid_url(cls, value: SecretStr) -> SecretStr:
        try:
            parse_uri(value.get_secret_value(), validate=True)
        except (InvalidURI, ConfigurationError, ValueError) as exc:
            # The message never repeats the URL: it may carry a password.
            raise ValueError(f"not a MongoDB URL ({exc}); e.g. mongodb://host:27017") from None
        return value

    @field_validator("mongo_database")
    @classmethod
    def _valid_database(cls, value: str) -> str:
        if not value or len(value.encode()) > 63 or _BAD_DATABASE_CHARS.search(value):
            raise ValueError(
                'a MongoDB database name is 1-63 bytes without / \\ . space " $ * < > : | ?'
            )
        return value
