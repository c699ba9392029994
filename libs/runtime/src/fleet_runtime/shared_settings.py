"""Fleet-wide settings: ``FLEET_*`` variables every worker reads as the fallback of its own.

One environment file can configure a whole fleet: ``FLEET_NATS_URL`` gives every worker
its NATS address unless the worker's prefixed variable (``TRADE_RECORDER_NATS_URL``) says
otherwise. The prefixed variable always wins; ``FLEET_*`` wins over the class default.
"""

from __future__ import annotations

import os
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

FLEET_PREFIX = "FLEET_"
# Settings shared by name: a worker field with one of these names (or starting with
# ``s3_``) falls back to the FLEET_ variable of the same name.
SHARED_FIELDS = frozenset({"nats_url", "nats_creds", "postgres_dsn", "redis_url", "mongo_url"})
SHARED_FIELD_PREFIXES = ("s3_", "nats_tls_")


def shared_variable(field: str) -> str | None:
    """The ``FLEET_*`` variable that is ``field``'s fallback, or None if it has none."""
    if field in SHARED_FIELDS or field.startswith(SHARED_FIELD_PREFIXES):
        return f"{FLEET_PREFIX}{field.upper()}"
    return None


def is_fleet_variable(variable: str) -> bool:
    """Whether ``variable`` is one of the fleet-wide ones (a worker may not read them all)."""
    if not variable.startswith(FLEET_PREFIX):
        return False
    return shared_variable(variable[len(FLEET_PREFIX) :].lower()) is not None


def own_variable(cls: type[BaseSettings], field: str) -> str:
    """The worker's own variable for ``field`` (``TRADE_RECORDER_NATS_URL``)."""
    return f"{str(cls.model_config.get('env_prefix', '')).upper()}{field.upper()}"


def variable_in_use(cls: type[BaseSettings], field: str) -> str:
    """The variable ``field``'s value comes from now: the own one, else a set FLEET_ one.

    Messages name this one, so the operator edits the variable that is actually read.
    """
    return variable_with_prefix(str(cls.model_config.get("env_prefix", "")), field)


def variable_with_prefix(prefix: str, field: str) -> str:
    """``variable_in_use`` for the settings with env prefix ``prefix`` (``TRADE_RECORDER_``)."""
    own = f"{prefix.upper()}{field.upper()}"
    shared = shared_variable(field)
    if own not in os.environ and shared is not None and shared in os.environ:
        return shared
    return own


def variables_of(cls: type[BaseSettings], field: str) -> str:
    """Both variables of a shared setting for a fix (``A (or FLEET_A)``), else the own one."""
    own = own_variable(cls, field)
    shared = shared_variable(field)
    return f"{own} (or {shared})" if shared else own


class FleetFallbackSource(PydanticBaseSettingsSource):
    """Values of ``FLEET_*`` variables for the fields that have one (read when built)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        variable = shared_variable(field_name)
        if variable is None:
            return None, field_name, False
        return os.environ.get(variable), field_name, False

    def __call__(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for name, info in self.settings_cls.model_fields.items():
            value, _, _ = self.get_field_value(info, name)
            if value is not None:
                found[name] = value
        return found
