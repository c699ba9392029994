"""A JetStream cluster of nats-server nodes on loopback, for replication and failover tests."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from fleet_testing.errors import LauncherConfigError, ServerStartError
from fleet_testing.probes import free_port, http_json, wait_until
from fleet_testing.servers.base import LOOPBACK, ServerKind
from fleet_testing.servers.nats_server import NatsServer

if TYPE_CHECKING:
    from fleet_testing.natsauth import NatsAuthSetup


class NatsCluster:
    """``size`` nats-server nodes routed to each other, each with its own store directory.

    Every node's ports are fixed at construction so a killed node restarts where its peers
    expect it. Clients should use ``urls`` (all nodes) so they fail over when one node dies.
    """

    kind = ServerKind.NATS

    def __init__(
        self,
        workdir: Path,
        *,
        size: int = 3,
        name: str = "nats-cluster",
        auth: NatsAuthSetup | None = None,
    ) -> None:
        if size < 1:
            raise LauncherConfigError(f"a NATS cluster needs at least one node, got size={size}")
        self.name = name
        self.workdir = workdir
        self.auth = auth
        self.nodes: list[NatsServer] = [
            NatsServer(
                workdir / f"n{i}",
                name=f"{name}-n{i}",
                port=free_port(LOOPBACK),
                monitor_port=free_port(LOOPBACK),
                cluster_name=name,
                cluster_port=free_port(LOOPBACK),
                auth=auth,
            )
            for i in range(1, size + 1)
        ]
        for node in self.nodes:
            node.routes = [p.cluster_url for p in self.nodes if p is not node and p.cluster_url]

    @property
    def urls(self) -> list[str]:
        """Every node's client URL (``nats.connect(servers=cluster.urls)``)."""
        return [node.url for node in self.nodes]

    @property
    def url(self) -> str:
        """All client URLs comma-separated, the form the NATS CLI takes and ``env()`` exports.

        nats-py wants a list: split on commas (or use ``urls``).
        """
        return ",".join(self.urls)

    @property
    def managed(self) -> bool:
        """Cluster nodes are always started here."""
        return True

    @property
    def running(self) -> bool:
        """True while every node runs."""
        return all(node.running for node in self.nodes)

    def env(self) -> dict[str, str]:
        """The variables that point workers at the cluster (and at their credentials)."""
        return {self.kind.env_var: self.url, **(self.auth.env() if self.auth else {})}

    def start(self) -> NatsCluster:
        """Start every node, wait until each reports JetStream healthy, then until all of
        them follow one meta leader that sees every other node current (before that, a
        stream creation may wait for peers and time out)."""
        for node in self.nodes:
            node.spawn()
        for node in self.nodes:
            node.wait_ready()
        timeout = max(node.start_timeout for node in self.nodes)
        try:
            wait_until(self._meta_settled, timeout=timeout, what=f"{self.name} meta leader")
        except TimeoutError as exc:
            views = {node.name: self._meta(node) for node in self.nodes}
            raise ServerStartError(f"{self.name}: {exc}; each node's view: {views}") from None
        return self

    @staticmethod
    def _meta(node: NatsServer) -> dict[str, object]:
        """The node's ``meta_cluster`` section of ``/jsz`` (empty when it has none)."""
        jsz = http_json(node.host, node.monitor_port, "/jsz")
        meta = jsz.get("meta_cluster") if isinstance(jsz, dict) else None
        return meta if isinstance(meta, dict) else {}

    def _meta_settled(self) -> bool:
        metas = [self._meta(node) for node in self.nodes]
        leaders = {meta.get("leader") for meta in metas}
        if len(leaders) != 1 or not next(iter(leaders)):
            return False
        leader = next(m for n, m in zip(self.nodes, metas, strict=True) if n.name in leaders)
        replicas = leader.get("replicas")
        current = {
            r.get("name")
            for r in (replicas if isinstance(replicas, list) else [])
            if isinstance(r, dict) and r.get("current") is True
        }
        return current == {node.name for node in self.nodes} - leaders

    def stop(self) -> None:
        """Stop every node cleanly."""
        for node in self.nodes:
            node.stop()

    def node(self, index: int) -> NatsServer:
        """Node ``index`` (0-based), with a clear error when out of range."""
        if not 0 <= index < len(self.nodes):
            raise LauncherConfigError(
                f"{self.name} has nodes 0..{len(self.nodes) - 1}, not {index}"
            )
        return self.nodes[index]

    def __repr__(self) -> str:
        return f"<NatsCluster {self.name} {self.url}>"
