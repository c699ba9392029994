"""What every launched server can do: start, stop, kill, pause, restart, and say where it is."""

from __future__ import annotations

import abc
import asyncio
import os
import signal
from enum import StrEnum
from pathlib import Path
from typing import ClassVar, Self
from urllib.parse import urlsplit

from fleet_testing.errors import (
    LauncherConfigError,
    ServerNotManaged,
    ServerStartError,
)
from fleet_testing.probes import free_port, tcp_open, wait_until
from fleet_testing.process import STOP_TIMEOUT, ServerProcess

LOOPBACK = "127.0.0.1"
_PORT_RETRIES = 3
_PORT_IN_USE_MARKERS = ("address already in use", "address in use", "errno 98")


class ServerKind(StrEnum):
    """The backing services Tradefleet runs against."""

    NATS = "nats"
    POSTGRES = "postgres"
    REDIS = "redis"
    MONGO = "mongo"
    S3 = "s3"

    @property
    def env_var(self) -> str:
        """The variable that points at an external server of this kind (and that workers read)."""
        return _ENV_VARS[self]

    @classmethod
    def parse(cls, value: str | ServerKind) -> ServerKind:
        """The kind named ``value``, or a clear error listing the valid names."""
        try:
            return cls(value)
        except ValueError:
            names = ", ".join(k.value for k in cls)
            raise LauncherConfigError(
                f"unknown server kind {value!r}: use one of {names}"
            ) from None


_ENV_VARS: dict[ServerKind, str] = {
    ServerKind.NATS: "FLEET_NATS_URL",
    ServerKind.POSTGRES: "FLEET_POSTGRES_DSN",
    ServerKind.REDIS: "FLEET_REDIS_URL",
    ServerKind.MONGO: "FLEET_MONGO_URL",
    ServerKind.S3: "FLEET_S3_ENDPOINT",
}


class Server(abc.ABC):
    """A server on a loopback port, either started here (managed) or external (from a URL).

    A managed server owns ``workdir`` (data and ``server.log``) and keeps its port across
    ``restart`` so clients reconnect to the same URL and find the same data. An external
    server only supports ``start`` (which waits until it answers) and ``url``/``env``.
    """

    kind: ClassVar[ServerKind]
    start_timeout: ClassVar[float] = 30.0
    stop_timeout: ClassVar[float] = STOP_TIMEOUT
    """Seconds a clean stop may take before the server is killed."""
    stop_signal: ClassVar[signal.Signals] = signal.SIGTERM

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        port: int | None = None,
        name: str | None = None,
        external_url: str | None = None,
    ) -> None:
        self.name = name or self.kind.value
        self.host = LOOPBACK
        self._external_url = external_url
        self._fixed_port = port is not None
        self._prepared = False
        self._external_seen = False
        self._process: ServerProcess | None = None
        if external_url is not None:
            self.host, self.port = _host_port(external_url, self.kind)
            self.workdir: Path | None = None
        else:
            if workdir is None:
                raise LauncherConfigError(
                    f"{self.name}: a managed server needs a workdir (or pass external_url)"
                )
            self.workdir = workdir
            self.port = port if port is not None else free_port(self.host)

    @classmethod
    def external(cls, url: str, *, name: str | None = None) -> Self:
        """A server somebody else runs (docker compose, CI service) at ``url``."""
        return cls(name=name, external_url=url)

    # --- where it is -------------------------------------------------------------------
    @property
    def managed(self) -> bool:
        """True when this launcher started the process (so it may stop or kill it)."""
        return self._external_url is None

    @property
    def url(self) -> str:
        """The client connection URL."""
        return self._external_url if self._external_url is not None else self._local_url()

    def env(self) -> dict[str, str]:
        """Environment variables that point a worker (or a nested launcher) at this server."""
        return {self.kind.env_var: self.url}

    @property
    def log_path(self) -> Path | None:
        """The server's combined stdout/stderr, for a managed server."""
        return None if self.workdir is None else self.workdir / "server.log"

    @property
    def running(self) -> bool:
        """True while the managed process is alive (always True for an external server)."""
        return not self.managed or (self._process is not None and self._process.running)

    @property
    def needs_start(self) -> bool:
        """True when ``start`` has work to do: a stopped process, an unchecked external."""
        return not self._external_seen if not self.managed else not self.running

    @property
    def pid(self) -> int | None:
        """The managed process id while running."""
        return None if self._process is None else self._process.pid

    def __repr__(self) -> str:
        how = "managed" if self.managed else "external"
        return f"<{type(self).__name__} {self.name} {how} {self.url}>"

    # --- lifecycle ---------------------------------------------------------------------
    def start(self) -> Self:
        """Start the process (if managed) and return once the server answers clients."""
        self.spawn()
        self.wait_ready()
        return self

    def spawn(self) -> None:
        """Launch the process without waiting for it; pair with ``wait_ready``.

        Spawning several servers before waiting on any starts them in parallel, and lets
        cluster nodes find each other before each one is asked to be healthy.
        """
        if not self.managed or self.running:
            return
        if not self._prepared:
            self._workdir().mkdir(parents=True, exist_ok=True)
            self._prepare()
            self._prepared = True
        self._process = self._new_process()
        self._process.start()

    def wait_ready(self) -> None:
        """Return once the server serves clients; raise ``ServerStartError`` if it cannot."""
        if not self.managed:
            if not self._external_seen:
                self._wait_external()
                self._external_seen = True
            return
        for attempt in range(_PORT_RETRIES):
            try:
                self._wait_process_ready()
                self._fixed_port = True  # clients now hold this URL: restarts keep it
                return
            except ServerStartError as exc:
                if self._process is not None:
                    self._process.kill()
                port_taken = any(m in str(exc).lower() for m in _PORT_IN_USE_MARKERS)
                # An auto-chosen port taken by a stranger between probe and bind: pick
                # another. A fixed or already-published port must not move silently.
                if port_taken and not self._fixed_port and attempt + 1 < _PORT_RETRIES:
                    self._repick_ports()
                    self.spawn()
                    continue
                raise

    def stop(self) -> None:
        """Shut down cleanly (the server's own stop signal), killing it if it hangs."""
        self._require_managed("stop")
        if self._process is not None:
            self._process.stop(self.stop_timeout)

    def kill(self) -> None:
        """SIGKILL the server and its children: a crash, no shutdown work."""
        self._require_managed("kill")
        if self._process is not None:
            self._process.kill()

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections stay open but nothing is answered."""
        self._require_managed("pause")
        if self._process is not None:
            self._process.pause()

    def resume(self) -> None:
        """Unfreeze a paused server."""
        self._require_managed("resume")
        if self._process is not None:
            self._process.resume()

    def restart(self, *, kill: bool = False) -> Self:
        """Stop (or ``kill``) then start again on the same port with the same data."""
        self._require_managed("restart")
        if kill:
            self.kill()
        else:
            self.stop()
        return self.start()

    async def astart(self) -> Self:
        """``start`` without blocking the event loop."""
        return await asyncio.to_thread(self.start)

    async def astop(self) -> None:
        """``stop`` without blocking the event loop."""
        await asyncio.to_thread(self.stop)

    async def akill(self) -> None:
        """``kill`` without blocking the event loop."""
        await asyncio.to_thread(self.kill)

    async def arestart(self, *, kill: bool = False) -> Self:
        """``restart`` without blocking the event loop."""
        return await asyncio.to_thread(self.restart, kill=kill)

    # --- what each kind supplies -------------------------------------------------------
    @abc.abstractmethod
    def _local_url(self) -> str:
        """The URL of the managed server."""

    @abc.abstractmethod
    def _command(self) -> list[str]:
        """argv that runs the server in the foreground on ``self.port``."""

    def _ready(self) -> bool:
        """True once the managed server serves clients (default: its port accepts)."""
        return tcp_open(self.host, self.port)

    def _external_ready(self) -> bool:
        """True once the external server accepts connections."""
        return tcp_open(self.host, self.port)

    def _prepare(self) -> None:  # noqa: B027 - optional hook, most kinds need nothing
        """One-time work before the first start (create data directories, initdb)."""

    def _run_as(self) -> str | None:
        """The unprivileged user to run as, for servers that refuse root."""
        return None

    def _process_env(self) -> dict[str, str] | None:
        """The child's environment (None: inherit)."""
        return None

    def _repick_ports(self) -> None:
        """Choose new free ports after a bind conflict."""
        self.port = free_port(self.host)

    # --- internals ---------------------------------------------------------------------
    def _workdir(self) -> Path:
        if self.workdir is None:
            raise ServerNotManaged(f"{self.name} is external ({self.url}): it has no workdir")
        return self.workdir

    def _new_process(self) -> ServerProcess:
        workdir = self._workdir()
        return ServerProcess(
            self._command(),
            log_path=workdir / "server.log",
            cwd=workdir,
            env=self._process_env(),
            user=self._run_as(),
            stop_signal=self.stop_signal,
        )

    def _wait_process_ready(self) -> None:
        process = self._process
        if process is None:
            raise ServerStartError(f"{self.name} was never spawned: call start()")

        def exited() -> str | None:
            code = process.returncode
            return None if code is None else f"exited with status {code}"

        try:
            wait_until(
                self._ready, timeout=self.start_timeout, what=f"{self.name} ready", abort=exited
            )
        except (TimeoutError, RuntimeError) as exc:
            raise ServerStartError(
                f"{self.name} did not start on {self.host}:{self.port}: {exc}.\n"
                f"command: {' '.join(process.argv)}\n"
                f"last lines of {process.log_path}:\n{process.log_tail()}"
            ) from None

    def _wait_external(self) -> None:
        try:
            wait_until(self._external_ready, timeout=self.start_timeout, what=f"{self.name} up")
        except TimeoutError:
            raise ServerStartError(
                f"{self.name}: nothing answers at {self.url} (from {self.kind.env_var}). "
                f"Start that server, or unset {self.kind.env_var} to have one launched here."
            ) from None

    def _require_managed(self, action: str) -> None:
        if not self.managed:
            raise ServerNotManaged(
                f"cannot {action} {self.name}: it is external ({self.url}, from "
                f"{self.kind.env_var}). Unset {self.kind.env_var} so the launcher runs its own."
            )


def _host_port(url: str, kind: ServerKind) -> tuple[str, int]:
    """The first host:port of a server URL (a NATS URL may list several)."""
    first = url.split(",", maxsplit=1)[0].strip()
    try:
        parts = urlsplit(first)
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise LauncherConfigError(f"{kind.env_var}={url!r} is not a valid URL: {exc}") from None
    if not host or port is None:
        raise LauncherConfigError(
            f"{kind.env_var}={url!r} has no host:port: write it like {_EXAMPLES[kind]}"
        )
    return host, port


_EXAMPLES = {
    ServerKind.NATS: "nats://127.0.0.1:4222",
    ServerKind.POSTGRES: "postgresql://postgres@127.0.0.1:5432/postgres",
    ServerKind.REDIS: "redis://127.0.0.1:6379/0",
    ServerKind.MONGO: "mongodb://127.0.0.1:27017/",
    ServerKind.S3: "http://127.0.0.1:9000",
}


def running_as_root() -> bool:
    """True when this process has uid 0 (PostgreSQL refuses to run as root)."""
    return os.geteuid() == 0
