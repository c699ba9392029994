"""A MongoDB-wire server (secantusdb on WiredTiger) on a loopback port."""

from __future__ import annotations

import sys

from fleet_testing.servers.base import Server, ServerKind


class MongoServer(Server):
    """secantusdb in ``workdir/data``; acknowledged writes survive ``restart`` and ``kill``.

    It advertises itself as a one-node replica set (change streams need that); the URL
    asks for a direct connection so drivers do not wait on replica-set discovery.
    For real MongoDB point ``FLEET_MONGO_URL`` at one.
    """

    kind = ServerKind.MONGO
    start_timeout = 60.0  # a Python server: slower to import on a busy two-core machine

    def _local_url(self) -> str:
        return f"mongodb://{self.host}:{self.port}/?directConnection=true"

    def _prepare(self) -> None:
        # An empty config file stops secantusd from picking up a stray ./secantusd.toml or
        # ~/.secantus/secantusd.toml that would change ports or storage behind our back.
        (self._workdir() / "secantusd.toml").write_text("")

    def _command(self) -> list[str]:
        workdir = self._workdir()
        return [
            sys.executable, "-m", "secantus",
            "--config", str(workdir / "secantusd.toml"),
            "--host", self.host,
            "--port", str(self.port),
            "--storage-path", str(workdir / "data"),
            "--log-level", "WARNING",
            # Without it an acknowledged write can still sit in WiredTiger's log buffer
            # and vanish with SIGKILL (seen here: insert, kill -9, restart, gone); crash
            # tests need acked to mean kept. Measured cost on these machines: noise.
            "--sync-on-commit",
        ]  # fmt: skip
