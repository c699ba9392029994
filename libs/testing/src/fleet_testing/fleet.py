"""The launcher: a set of servers in one base directory, started together, stopped together."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar

from fleet_testing.docker_backend import BACKEND_VAR, start_container
from fleet_testing.errors import LauncherConfigError
from fleet_testing.natsauth import NatsAuthSetup, auth_wanted, make_auth
from fleet_testing.servers import (
    MongoServer,
    NatsCluster,
    NatsServer,
    PostgresServer,
    RedisServer,
    S3Server,
    Server,
    ServerKind,
    server_class,
)

ENV_FILE = "fleet.env"
_S = TypeVar("_S", bound=Server)


class Fleet:
    """Real backing servers for tests and for ``fleet dev up``.

    One server per kind is the *shared* one (``fleet.nats``, ``fleet.postgres``…). It is
    started on first use, or all at once with ``start``. When ``FLEET_<KIND>_URL`` is set
    (docker compose, CI services) the shared server of that kind is that external one and
    nothing is launched for it. ``launch`` adds private, always-local servers for tests
    that kill or restart them. ``env()`` hands the URLs to worker processes.

    ``base_dir=None`` uses a fresh temp dir removed by ``stop``; a given ``base_dir``
    (``.fleet/dev``) is kept, so PostgreSQL, NATS and MongoDB data survive a new ``Fleet``.

    Local NATS servers run with the fleet's generated users (``fleet_testing.natsauth``),
    unless ``nats_auth=False`` or ``FLEET_NATS_AUTH=off``; ``nats_anonymous`` lets a client
    without credentials in as the test harness (tests: yes; `fleet dev up`: no).
    """

    def __init__(
        self,
        base_dir: Path | str | None = None,
        *,
        keep: bool | None = None,
        use_external: bool = True,
        ports: Mapping[str, int] | None = None,
        persistent: bool = False,
        environ: Mapping[str, str] | None = None,
        nats_auth: bool | None = None,
        nats_anonymous: bool = True,
        streams_file: Path | None = None,
    ) -> None:
        if base_dir is None:
            self.base_dir = Path(tempfile.mkdtemp(prefix="fleet-"))
            self.keep = bool(keep)
        else:
            self.base_dir = Path(base_dir).absolute()
            self.base_dir.mkdir(parents=True, exist_ok=True)
            self.keep = True if keep is None else keep
        self.use_external = use_external
        self.persistent = persistent
        self._environ = os.environ if environ is None else environ
        self._nats_auth_on = auth_wanted(self._environ) if nats_auth is None else nats_auth
        self._nats_anonymous = nats_anonymous
        self._streams_file = streams_file
        self._nats_auth: NatsAuthSetup | None = None
        self._ports = {ServerKind.parse(k): v for k, v in (ports or {}).items()}
        self._shared: dict[ServerKind, Server] = {}
        self._private: list[Server | NatsCluster] = []
        self._lock = threading.RLock()
        self._stopped = False
        atexit.register(self.stop)

    # --- shared servers ----------------------------------------------------------------
    @property
    def nats(self) -> NatsServer:
        """The shared NATS server (started on first use)."""
        return self._typed(ServerKind.NATS, NatsServer)

    @property
    def postgres(self) -> PostgresServer:
        """The shared PostgreSQL server (started on first use)."""
        return self._typed(ServerKind.POSTGRES, PostgresServer)

    @property
    def redis(self) -> RedisServer:
        """The shared Redis server (started on first use)."""
        return self._typed(ServerKind.REDIS, RedisServer)

    @property
    def mongo(self) -> MongoServer:
        """The shared MongoDB-wire server (started on first use)."""
        return self._typed(ServerKind.MONGO, MongoServer)

    @property
    def s3(self) -> S3Server:
        """The shared S3 server (started on first use)."""
        return self._typed(ServerKind.S3, S3Server)

    def server(self, kind: ServerKind | str) -> Server:
        """The shared server of ``kind``, started if it is not yet."""
        return self.start(kind)._shared[ServerKind.parse(kind)]

    def start(self, *kinds: ServerKind | str) -> Self:
        """Start the shared servers of ``kinds`` (all five when none given), in parallel."""
        wanted = [ServerKind.parse(k) for k in kinds] if kinds else list(ServerKind)
        with self._lock:
            self._check_open()
            pending = [self._shared_server(kind) for kind in wanted]
            pending = [s for s in pending if s.needs_start]
            if pending:
                self._start_together(pending)
                self._write_env_file()
        return self

    @property
    def started(self) -> dict[ServerKind, Server]:
        """The shared servers created so far."""
        return dict(self._shared)

    def env(self) -> dict[str, str]:
        """``FLEET_*`` variables for every shared server, to pass to worker processes."""
        merged: dict[str, str] = {}
        for server in self._shared.values():
            merged.update(server.env())
        return merged

    @property
    def env_file(self) -> Path:
        """``KEY=VALUE`` lines of ``env()`` (``set -a; . FILE`` in a shell, or --env-file)."""
        return self.base_dir / ENV_FILE

    # --- private servers ---------------------------------------------------------------
    def launch(self, kind: ServerKind | str, *, name: str | None = None) -> Server:
        """Start a private local server of ``kind`` (never external) that only the caller
        kills, pauses or restarts; it is stopped with the fleet."""
        parsed = ServerKind.parse(kind)
        with self._lock:
            self._check_open()
            server = self._new_server(parsed, name=self._unique_name(name or parsed.value))
            self._private.append(server)
        return server.start()

    def launch_nats_cluster(self, size: int = 3, *, name: str | None = None) -> NatsCluster:
        """Start a private JetStream cluster of ``size`` nodes on loopback."""
        with self._lock:
            self._check_open()
            cluster_name = self._unique_name(name or "nats-cluster")
            cluster = NatsCluster(
                self.base_dir / cluster_name,
                size=size,
                name=cluster_name,
                auth=self.nats_auth,
            )
            self._private.append(cluster)
        return cluster.start()

    @property
    def nats_auth(self) -> NatsAuthSetup | None:
        """The generated NATS users of this fleet's local servers (None with auth off)."""
        with self._lock:
            if self._nats_auth is None and self._nats_auth_on:
                self._nats_auth = make_auth(
                    self.base_dir / "nats-auth",
                    streams_file=self._streams_file,
                    anonymous=self._nats_anonymous,
                )
            return self._nats_auth

    # --- teardown ----------------------------------------------------------------------
    def stop(self) -> None:
        """Stop every managed server (private first), then remove a temp base dir."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            atexit.unregister(self.stop)
            for item in [*reversed(self._private), *reversed(self._shared.values())]:
                if item.managed:
                    item.stop()
            if not self.keep:
                shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        names = ", ".join(repr(s) for s in self._shared.values())
        return f"<Fleet {self.base_dir} [{names}]>"

    # --- internals ---------------------------------------------------------------------
    def _typed(self, kind: ServerKind, cls: type[_S]) -> _S:
        server = self.server(kind)
        if not isinstance(server, cls):  # pragma: no cover - server_class maps kind to cls
            raise TypeError(f"{kind} server is {type(server).__name__}, not {cls.__name__}")
        return server

    def _shared_server(self, kind: ServerKind) -> Server:
        existing = self._shared.get(kind)
        if existing is not None:
            return existing
        cls = server_class(kind)
        url = self._environ.get(kind.env_var, "").strip()
        if self.use_external and not url and self._environ.get(BACKEND_VAR) == "docker":
            url = start_container(kind, lambda u: cls.external(u).start())
        if self.use_external and url:
            server = cls.external(url)
        else:
            server = self._new_server(kind, name=kind.value, port=self._ports.get(kind))
        self._shared[kind] = server
        return server

    def _new_server(self, kind: ServerKind, *, name: str, port: int | None = None) -> Server:
        workdir = self.base_dir / name
        if kind is ServerKind.REDIS:
            return RedisServer(workdir, name=name, port=port, persistent=self.persistent)
        if kind is ServerKind.NATS:
            return NatsServer(workdir, name=name, port=port, auth=self.nats_auth)
        return server_class(kind)(workdir, name=name, port=port)

    def _unique_name(self, wanted: str) -> str:
        taken = {s.name for s in self._shared.values()} | {p.name for p in self._private}
        if wanted not in taken:
            return wanted
        n = 2
        while f"{wanted}-{n}" in taken:
            n += 1
        return f"{wanted}-{n}"

    def _start_together(self, pending: Iterable[Server]) -> None:
        # Spawn everything first, then wait: startup times overlap instead of adding up.
        spawned: list[Server] = []
        try:
            for server in pending:
                server.spawn()
                spawned.append(server)
            for server in spawned:
                server.wait_ready()
        except BaseException:
            for server in spawned:
                if server.managed:
                    server.kill()
            raise

    def _write_env_file(self) -> None:
        lines = [f"{key}={value}\n" for key, value in sorted(self.env().items())]
        self.env_file.write_text("".join(lines))

    def _check_open(self) -> None:
        if self._stopped:
            raise LauncherConfigError(
                f"this Fleet ({self.base_dir}) was stopped: create a new Fleet to start servers"
            )
