"""An S3-compatible server (moto) on a loopback port."""

from __future__ import annotations

import os
import sys

from fleet_testing.probes import http_ok
from fleet_testing.servers.base import Server, ServerKind

ACCESS_KEY = "fleet-test"
SECRET_KEY = "fleet-test-secret"  # noqa: S105 - moto accepts any key; this is not a secret
REGION = "us-east-1"

# werkzeug logs every request at INFO; under load that log costs more than the requests.
_MOTO_MAIN = (
    "import logging, sys; logging.getLogger('werkzeug').setLevel(logging.WARNING); "
    "from moto.server import main; main(sys.argv[1:])"
)


class S3Server(Server):
    """moto's S3 server. It keeps objects in memory: a restart starts with no buckets.

    moto accepts any credentials; ``env()`` still hands workers a key pair, so code paths
    that require credentials run unchanged. For MinIO point ``FLEET_S3_ENDPOINT`` at one.
    """

    kind = ServerKind.S3
    start_timeout = 60.0

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

    def _command(self) -> list[str]:
        return [sys.executable, "-c", _MOTO_MAIN, "-H", self.host, "-p", str(self.port)]

    def _process_env(self) -> dict[str, str]:
        env = dict(os.environ)
        # Dummy credentials so moto never looks for real ones on this machine.
        env.update(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY)
        return env

    def _ready(self) -> bool:
        return http_ok(self.host, self.port, "/")
