"""What a client presents to NATS: its user's nkey seed (or .creds), its inbox, TLS.

``nats_creds`` is a seed file written by ``fleet security generate`` (or a ``.creds``
file with a user JWT), or the directory that command writes, in which case the file of
the user the client acts as is used (``<dir>/<user>.nk``): one ``FLEET_NATS_CREDS`` then
serves a whole dev fleet, each worker picking its own user. Replies go to the user's own
inbox (``_INBOX.<user>``), the only one its permissions let it read.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from fleet_runtime.errors import ConfigError
from fleet_runtime.security.credentials import inbox_prefix, read_seed, seed_file
from fleet_runtime.settings import load_settings
from fleet_runtime.shared_settings import variable_in_use

JWT_MARKER = b"BEGIN NATS USER JWT"


@dataclass(frozen=True)
class NatsAuth:
    """nats-py connect options for one user, and the setting to fix when NATS refuses them."""

    user: str
    setting: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def anonymous(self) -> bool:
        """Whether no credentials are presented (no seed, no .creds, no client certificate)."""
        return not self.setting.endswith("TLS_CERT") and not (
            {"nkeys_seed", "user_credentials"} & set(self.options)
        )


def credentials_options(creds: Path | None, user: str, setting: str) -> dict[str, Any]:
    """``nkeys_seed``/``user_credentials`` and the inbox prefix for ``user`` from ``creds``."""
    if creds is None:
        return {"inbox_prefix": inbox_prefix(user)}
    path = seed_file(creds, user) if creds.is_dir() else creds
    if not path.is_file():
        where = f"the directory {creds} has no {path.name}" if creds.is_dir() else f"{path}"
        raise ConfigError(
            f"NATS credentials for {user!r} not found: {where}",
            fix=f"run `fleet security generate` and set {setting} to {user}'s seed file",
        )
    try:
        head = path.read_bytes()[:4096]
    except OSError as exc:
        raise ConfigError(
            f"cannot read the NATS credentials {path} ({setting}): {exc.strerror or exc}",
            fix=f"make {path} readable by this process (mode 0600, same owner)",
        ) from None
    options: dict[str, Any] = {"inbox_prefix": inbox_prefix(user)}
    if JWT_MARKER in head:
        options["user_credentials"] = str(path)
    else:
        read_seed(path)  # a readable, valid seed, or one clear error (content never shown)
        options["nkeys_seed"] = str(path)
    return options


def tls_context(
    ca: Path | None, cert: Path | None, key: Path | None, setting: str
) -> ssl.SSLContext:
    """A client TLS context trusting ``ca`` (else the system's), presenting ``cert`` if given."""
    try:
        context = ssl.create_default_context(cafile=str(ca) if ca else None)
        if cert is not None:
            context.load_cert_chain(str(cert), str(key) if key else None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"cannot load the NATS TLS files ({setting}): {exc}",
            fix=f"point {setting} at readable PEM files (CA, certificate, key)",
        ) from None
    return context


def nats_auth(settings: BaseSettings, user: str) -> NatsAuth:
    """The connect options of ``settings`` (its ``nats_creds`` and ``nats_tls_*``) for ``user``."""
    cls = type(settings)
    setting = variable_in_use(cls, "nats_creds")
    if getattr(settings, "nats_creds", None) is None and getattr(settings, "nats_tls_cert", None):
        # Mutual TLS with verify_and_map: the certificate is the credential.
        setting = variable_in_use(cls, "nats_tls_cert")
    options = credentials_options(getattr(settings, "nats_creds", None), user, setting)
    ca, cert, key = (getattr(settings, f"nats_tls_{n}", None) for n in ("ca", "cert", "key"))
    if ca is not None or cert is not None:
        options["tls"] = tls_context(ca, cert, key, variable_in_use(cls, "nats_tls_ca"))
    return NatsAuth(user, setting, options)


class CliNatsSettings(BaseSettings):
    """`fleet` commands' NATS credentials and TLS (``FLEET_NATS_CREDS``, ``FLEET_NATS_TLS_*``)."""

    model_config = SettingsConfigDict(env_prefix="FLEET_", extra="ignore", frozen=True)

    nats_creds: Path | None = Field(
        None, description="Seed file of the command's user, or the generated directory."
    )
    nats_tls_ca: Path | None = None
    nats_tls_cert: Path | None = None
    nats_tls_key: Path | None = None

    @field_validator("nats_creds", "nats_tls_ca", "nats_tls_cert", "nats_tls_key", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value


def env_auth(env: Mapping[str, str], user: str) -> NatsAuth:
    """The credentials of ``user`` from ``FLEET_NATS_CREDS``/``FLEET_NATS_TLS_*`` in ``env``."""
    values: dict[str, Any] = {
        name: env[f"FLEET_{name.upper()}"]
        for name in CliNatsSettings.model_fields
        if env.get(f"FLEET_{name.upper()}")
    }
    return nats_auth(CliNatsSettings(**values), user)


def cli_auth(user: str) -> NatsAuth:
    """The credentials of ``user`` for a `fleet` command (``admin``, ``publisher``)."""
    return nats_auth(load_settings(CliNatsSettings), user)
