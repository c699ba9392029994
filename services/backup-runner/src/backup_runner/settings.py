"""Settings of the backup-runner worker (environment prefix `BACKUP_RUNNER_`)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from fleet_runtime.settings import WorkerSettings


class BackupRunnerSettings(WorkerSettings):
    """backup-runner settings: the shared worker settings plus its store connection."""

    model_config = SettingsConfigDict(env_prefix="BACKUP_RUNNER_", extra="ignore", frozen=True)

    s3_endpoint: str = Field("127.0.0.1:9000", description="S3 endpoint host:port.")
    s3_secure: bool = Field(False, description="Use HTTPS to reach the S3 endpoint.")
    s3_access_key: SecretStr = Field(SecretStr("minioadmin"), description="S3 access key.")
    s3_secret_key: SecretStr = Field(SecretStr("minioadmin"), description="S3 secret key.")
    s3_bucket: str = Field("tradefleet-backups", description="Bucket for backups and segments.")
