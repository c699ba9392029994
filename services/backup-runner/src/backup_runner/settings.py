"""Settings of the backup-runner worker (environment prefix `BACKUP_RUNNER_`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from backup_runner.encryption import parse_key
from fleet_runtime.settings import WorkerSettings


class BackupRunnerSettings(WorkerSettings):
    """backup-runner settings: the shared worker settings plus the stores it copies."""

    model_config = SettingsConfigDict(env_prefix="BACKUP_RUNNER_", extra="ignore", frozen=True)

    # One request at a time (the durable's max_ack_pending is 1 as well).
    batch_size: int = Field(1, ge=1, le=1, description="Requests handed over at once (1).")

    s3_endpoint: str = Field("127.0.0.1:9000", description="S3 endpoint host:port or URL.")
    s3_secure: bool = Field(False, description="Use HTTPS to reach the S3 endpoint.")
    s3_access_key: SecretStr = Field(SecretStr("minioadmin"), description="S3 access key.")
    s3_secret_key: SecretStr = Field(SecretStr("minioadmin"), description="S3 secret key.")
    s3_region: str = Field("us-east-1", description="S3 region the requests are signed for.")
    s3_bucket: str = Field(
        "tradefleet-backups", min_length=3, description="Bucket for backups and segments."
    )
    s3_part_size_mb: int = Field(
        16, ge=5, le=512, description="Multipart part size: the memory one upload holds."
    )

    postgres_dsn: SecretStr = Field(
        SecretStr("postgresql://backup_runner@127.0.0.1:5432/tradefleet"),
        description="PostgreSQL DSN of a role that can read the worker schemas.",
    )
    postgres_schemas: list[str] = Field(
        ["lifecycle", "trading"], description="Worker schemas the postgres target dumps."
    )
    pg_bin_dir: str | None = Field(
        None, description="Directory of pg_dump matching the server (else pg_dump on PATH)."
    )

    mongo_url: SecretStr = Field(
        SecretStr("mongodb://127.0.0.1:27017"), description="MongoDB URL of the read models."
    )
    mongo_databases: list[str] = Field(
        ["tradefleet_analytics"], description="Databases the mongodb target copies."
    )
    mongo_timeout_s: float = Field(10.0, gt=0, description="Seconds to wait for MongoDB.")

    schedule_every_s: int = Field(
        0, ge=0, description="Request a backup of each scheduled target this often (0: off)."
    )
    schedule_targets: list[Literal["postgres", "mongodb", "stream"]] = Field(
        ["postgres", "mongodb", "stream"], description="Targets the schedule requests."
    )

    encryption_key: SecretStr | None = Field(
        None,
        description="Base64 of a 32-byte AES-256 key: backup objects are encrypted with it "
        "(AES-GCM); the manifests stay readable. None: no encryption.",
    )

    keep_hourly: int = Field(24, ge=0, description="Hourly backups kept per target (prune).")
    keep_daily: int = Field(30, ge=0, description="Daily backups kept per target (prune).")
    keep_monthly: int = Field(12, ge=0, description="Monthly backups kept per target (prune).")
    archive_keep_days: int = Field(
        30,
        ge=0,
        description="Days an archived stream segment is kept at least (prune; segments a kept "
        "backup's positions need stay longer). 0: only what kept backups need.",
    )

    archive_streams: list[str] = Field(
        ["BOTS", "TRADES", "OPS", "MARKET"], description="Streams the stream target archives."
    )
    archive_subjects: dict[str, list[str]] = Field(
        {"MARKET": ["market.candle.>"]},
        description="Per stream, the subjects archived (default: all of the stream's).",
    )
    segment_max_messages: int = Field(
        10_000, ge=1, le=1_000_000, description="Most messages in one archived segment."
    )

    history_stream: str | None = Field(
        "MARKET",
        description="Stream whose archived candle events feed the cold market-history tier "
        "(Parquet under history/candles/), compacted after each stream backup of it; "
        "None: no cold tier.",
    )
    history_1m_days: int = Field(
        365, ge=1, description="Days the cold tier keeps 1m candles after their month ends."
    )
    history_wider_days: int = Field(
        5 * 365,
        ge=1,
        description="Days the cold tier keeps 5m-or-wider candles after their year ends.",
    )

    @field_validator("encryption_key")
    @classmethod
    def _valid_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            # The message never repeats the key.
            parse_key(value.get_secret_value())
        return value
