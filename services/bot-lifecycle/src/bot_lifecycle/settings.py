"""Settings of the bot-lifecycle worker (environment prefix `BOT_LIFECYCLE_`)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from fleet_runtime.settings import WorkerSettings


class BotLifecycleSettings(WorkerSettings):
    """bot-lifecycle settings: the shared worker settings plus its store connection."""

    model_config = SettingsConfigDict(env_prefix="BOT_LIFECYCLE_", extra="ignore", frozen=True)

    postgres_dsn: SecretStr = Field(
        SecretStr("postgresql://bot_lifecycle@127.0.0.1:5432/tradefleet"),
        description="PostgreSQL DSN of the bot_lifecycle role.",
    )
    owner_dsn: SecretStr | None = Field(
        None,
        description="PostgreSQL DSN of the schema owner role, used only to run migrations.",
    )
    migrate_on_start: bool = Field(
        False, description="Apply pending migrations (with owner_dsn) before consuming."
    )
