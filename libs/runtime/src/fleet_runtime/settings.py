"""Settings shared by every worker: a pydantic-settings base class each service extends."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from fleet_runtime.errors import ConfigError
from fleet_runtime.heap import DEFAULT_GEN0_THRESHOLD
from fleet_runtime.shared_settings import FleetFallbackSource, variable_in_use

LogFormat = Literal["auto", "json", "console"]


class WorkerSettings(BaseSettings):
    """What every worker needs: NATS, its topology file, batching, health port and logging.

    A service subclass sets its own env prefix (``TRADE_RECORDER_``) and adds its store
    settings. Secrets are ``SecretStr`` so they never reach a log line or a repr.
    Addresses of servers fall back to the fleet-wide ``FLEET_*`` variables
    (``fleet_runtime.shared_settings``).
    """

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    nats_url: str = Field(
        "nats://127.0.0.1:4222", description="NATS server URL(s), comma-separated."
    )
    nats_creds: Path | None = Field(
        None,
        description="The worker's NATS nkey seed file (or .creds), or the directory "
        "`fleet security generate` writes (the worker's own <name>.nk is used).",
    )
    nats_tls_ca: Path | None = Field(
        None, description="CA certificate (PEM) to verify the NATS server's TLS certificate."
    )
    nats_tls_cert: Path | None = Field(
        None, description="Client certificate (PEM) for NATS mutual TLS."
    )
    nats_tls_key: Path | None = Field(None, description="Private key (PEM) of NATS_TLS_CERT.")
    streams_file: Path = Field(
        Path("streams.yaml"), description="Path to the topology declaration."
    )
    batch_size: int = Field(
        500, ge=1, le=10_000, description="Most events handed to one handler call."
    )
    batch_max_wait_ms: int = Field(
        20, ge=1, le=60_000, description="Longest a partial batch waits for more events."
    )
    health_port: int = Field(
        0, ge=0, le=65535, description="Port of /healthz, /readyz and /metrics (0: any free port)."
    )
    health_host: str = Field("127.0.0.1", description="Address the health server binds to.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="DEBUG, INFO, WARNING or ERROR."
    )
    log_format: LogFormat = Field(
        "auto", description="json, console, or auto (console on a terminal, JSON otherwise)."
    )
    shutdown_timeout_s: float = Field(
        25.0, gt=0, description="Deadline to finish and ack the batch in hand on SIGTERM."
    )
    startup_timeout_s: float = Field(
        60.0,
        gt=0,
        description="How long start-up waits for each server (NATS, the store) before it "
        "gives up with exit code 1.",
    )
    gc_gen0_threshold: int = Field(
        DEFAULT_GEN0_THRESHOLD,
        ge=0,
        description="Allocations between young garbage collections once the worker is ready "
        "(0: CPython's default, 700); start-up objects are frozen out of collection either way.",
    )

    @field_validator("nats_creds", "nats_tls_ca", "nats_tls_cert", "nats_tls_key", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # An empty variable (`FLEET_NATS_CREDS=`) means none, not the current directory.
        return None if value == "" else value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The worker's own variables first, then the fleet-wide ``FLEET_*`` fallbacks."""
        return (
            init_settings,
            env_settings,
            dotenv_settings,
            file_secret_settings,
            FleetFallbackSource(settings_cls),
        )


S = TypeVar("S", bound=BaseSettings)


def _is_secret(cls: type[BaseSettings], name: str) -> bool:
    """Whether field ``name`` holds a secret (its raw value is never echoed)."""
    field = cls.model_fields.get(name)
    return field is not None and "SecretStr" in str(field.annotation)


def load_settings(cls: type[S], **overrides: Any) -> S:
    """Build settings from the environment, turning validation errors into one clear message."""
    try:
        return cls(**overrides)
    except SettingsError as exc:
        # A list or mapping setting whose variable is not JSON fails before validation.
        prefix = str(cls.model_config.get("env_prefix", "")).upper()
        match = re.search(r'field "([^"]+)"', str(exc))
        env_name = f"{prefix}{match.group(1).upper()}" if match else "a setting"
        raise ConfigError(
            f"invalid settings for {cls.__name__}: {env_name} is not valid JSON "
            '(a list or mapping setting takes JSON, e.g. ["a", "b"])',
            fix=f"write {env_name} as JSON or unset it to use the default",
        ) from None
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = ".".join(str(p) for p in err["loc"]) or "?"
            env_name = variable_in_use(cls, name)
            got = "hidden: a secret" if _is_secret(cls, name) else repr(err.get("input"))
            problems.append(f"{env_name}: {err['msg']} (got {got})")
        raise ConfigError(
            f"invalid settings for {cls.__name__}: " + "; ".join(problems),
            fix="set the named environment variable(s) to a valid value or unset them "
            "to use the default",
        ) from None
