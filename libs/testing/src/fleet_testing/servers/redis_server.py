"""redis-server on a loopback port, in memory unless asked to persist."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from fleet_testing.binaries import find_program
from fleet_testing.probes import redis_command
from fleet_testing.servers.base import Server, ServerKind


class RedisServer(Server):
    """A Redis server; ``persistent=True`` keeps an append-only file in ``workdir``.

    Without persistence a restart starts empty, as a real cache loss would.
    """

    kind = ServerKind.REDIS

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        port: int | None = None,
        name: str | None = None,
        external_url: str | None = None,
        persistent: bool = False,
    ) -> None:
        super().__init__(workdir, port=port, name=name, external_url=external_url)
        self.persistent = persistent

    def url_for_db(self, db: int) -> str:
        """The URL of logical database ``db`` (0-15)."""
        parts = urlsplit(self.url)
        return parts._replace(path=f"/{db}").geturl()

    def ping(self) -> bool:
        """True when the server answers PING with PONG."""
        return redis_command(self.host, self.port, "PING") == b"+PONG"

    def flush(self, db: int = 0) -> None:
        """Empty logical database ``db``."""
        redis_command(self.host, self.port, "FLUSHDB", db=db)

    def _local_url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def _command(self) -> list[str]:
        binary = find_program(
            "redis-server",
            override_var="FLEET_REDIS_SERVER_BIN",
            install_hint="Install it (apt-get install redis-server) or set FLEET_REDIS_URL.",
        )
        argv = [
            str(binary),
            "--port", str(self.port),
            "--bind", self.host,
            "--dir", str(self._workdir()),
            "--save", "",
            "--daemonize", "no",
            "--protected-mode", "no",
        ]  # fmt: skip
        argv += ["--appendonly", "yes" if self.persistent else "no"]
        return argv

    def _ready(self) -> bool:
        # PONG (not just an open port): while loading its AOF Redis answers -LOADING.
        return self.ping()

    def _external_ready(self) -> bool:
        reply = redis_command(self.host, self.port, "PING")
        # An external server with a password answers -NOAUTH: it is up; the client
        # authenticates with the credentials in the URL.
        return reply is not None and (reply == b"+PONG" or reply.startswith(b"-NOAUTH"))
