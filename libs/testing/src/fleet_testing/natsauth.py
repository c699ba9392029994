"""The launcher's NATS users: the fleet's generated nkey config, on by default.

Every local nats-server the launcher starts (``Fleet``) runs with the authorization block
`fleet security generate` writes from the repository's streams.yaml, so each worker
process connects as its own user (``FLEET_NATS_CREDS`` is the seed directory: a worker
picks ``<its name>.nk``) and a missing permission fails the test that needs it.

For tests only, a client that presents no credentials is mapped to a ``harness`` user
(``no_auth_user``) that may do everything but pull from a worker's durable: test code
that creates streams and publishes fixtures needs no keys, while a worker process that
forgot its own seed fails instead of passing as the harness.
`fleet dev up` runs without that user. ``FLEET_NATS_AUTH=off`` turns auth off.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleet_runtime.natsauth import credentials_options
from fleet_runtime.security.credentials import seed_file
from fleet_runtime.security.generate import generate
from fleet_testing.errors import LauncherConfigError

AUTH_VAR = "FLEET_NATS_AUTH"
CREDS_VAR = "FLEET_NATS_CREDS"
HARNESS_USER = "harness"
# Partition durables granted beyond streams.yaml's own: tests and the benchmark partition
# streams up to this many ways (the benchmark: one partition per CPU).
MAX_PARTITIONS = 16


def auth_wanted(environ: Mapping[str, str]) -> bool:
    """Whether the launcher's NATS runs with auth (``FLEET_NATS_AUTH=off`` says no)."""
    return environ.get(AUTH_VAR, "on").strip().lower() not in {"off", "0", "false", "no"}


def repo_streams_file() -> Path:
    """streams.yaml of the working directory or of the checkout this package is in."""
    candidates = [Path.cwd(), *Path.cwd().parents, *Path(__file__).resolve().parents]
    for folder in candidates:
        found = folder / "streams.yaml"
        if found.is_file():
            return found
    raise LauncherConfigError(
        "no streams.yaml found (working directory, its parents, the checkout) to generate "
        f"the NATS users from; run from the repository or set {AUTH_VAR}=off"
    )


@dataclass(frozen=True)
class NatsAuthSetup:
    """A generated credentials directory and the server config that trusts it."""

    directory: Path
    config: Path
    anonymous: bool

    def seed(self, user: str) -> Path:
        """The seed file of ``user`` (a worker's name, ``publisher`` or ``admin``)."""
        return seed_file(self.directory, user)

    def client_options(self, user: str) -> dict[str, Any]:
        """nats-py connect options (seed, inbox) for ``user``: ``nats.connect(url, **opts)``."""
        return credentials_options(self.directory, user, CREDS_VAR)

    def env(self) -> dict[str, str]:
        """``FLEET_NATS_CREDS``: workers and `fleet` commands each pick their own user."""
        return {CREDS_VAR: str(self.directory)}


def make_auth(
    directory: Path,
    *,
    streams_file: Path | None = None,
    anonymous: bool = True,
    max_partitions: int = MAX_PARTITIONS,
) -> NatsAuthSetup:
    """Generate (or keep) the users of the fleet in ``directory``."""
    password = secrets.token_urlsafe(16)
    made = generate(
        directory,
        streams_file=streams_file or repo_streams_file(),
        max_partitions=max_partitions,
        anonymous=(HARNESS_USER, password) if anonymous else None,
    )
    return NatsAuthSetup(directory, made.config, anonymous)


def server_config(auth: NatsAuthSetup | None, tls: Mapping[str, str | bool] | None) -> str:
    """nats-server config text: the generated users and an optional ``tls`` block."""
    text = auth.config.read_text() if auth is not None else ""
    if tls:
        body = "\n".join(f"  {k}: {json.dumps(v)}" for k, v in tls.items())
        text += f"tls {{\n{body}\n}}\n"
    return text
