"""One server process: started in its own process group, logged to a file, stoppable."""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from fleet_testing.probes import wait_until

STOP_TIMEOUT = 15.0


class ServerProcess:
    """A long-running child process with its output in ``log_path``.

    The child leads its own process group, so a signal sent to the test runner's terminal
    group (Ctrl-C) does not reach the servers before the launcher stops them in order.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        log_path: Path,
        cwd: Path,
        env: Mapping[str, str] | None = None,
        user: str | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
    ) -> None:
        self.argv = list(argv)
        self.log_path = log_path
        self.cwd = cwd
        self.env = dict(env) if env is not None else None
        self.user = user
        self.stop_signal = stop_signal
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The process id while running, else None."""
        return self._popen.pid if self.running and self._popen is not None else None

    @property
    def running(self) -> bool:
        """True while the process has not exited."""
        return self._popen is not None and self._popen.poll() is None

    @property
    def returncode(self) -> int | None:
        """Exit status once exited (negative: killed by that signal), else None."""
        return None if self._popen is None else self._popen.poll()

    def start(self) -> None:
        """Spawn the process; output is appended to the log so restarts keep history."""
        if self.running:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"--- starting: {' '.join(self.argv)}\n".encode())
            log.flush()
            self._popen = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                user=self.user,
                group=_primary_group(self.user),
                extra_groups=[] if self.user is not None else None,
            )

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Ask the server to shut down cleanly; kill the group if it has not after ``timeout``."""
        if self._popen is None:
            return
        if self._popen.poll() is None:
            self._signal_leader(signal.SIGCONT)  # a paused process cannot act on the stop
            self._signal_leader(self.stop_signal)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._popen.wait(timeout)
        self.kill()

    def kill(self) -> None:
        """SIGKILL the process, its group and its children (a crash) and reap it.

        Children are killed by pid as well as by group because PostgreSQL makes every
        backend its own session leader; a backend outliving its postmaster would keep the
        old shared memory attached and stop the restarted server from starting.
        """
        if self._popen is None:
            return
        children = _children(self._popen.pid)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._popen.pid, signal.SIGKILL)
        for child in children:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(child, signal.SIGKILL)
        self._popen.wait()
        # SIGKILL is delivered asynchronously: return only once the children are gone, so
        # a restart right after never meets them.
        with contextlib.suppress(TimeoutError):
            wait_until(
                lambda: not any(_alive(child) for child in children),
                timeout=5.0,
                what="killed children gone",
            )

    def pause(self) -> None:
        """SIGSTOP the group: the server keeps its sockets but answers nothing.

        Returns once every thread of the group is stopped: ``kill`` only queues the signal,
        and on a busy machine a server thread was seen answering a request a millisecond
        after it.
        """
        self._signal_group(signal.SIGSTOP)
        if self._popen is not None and Path("/proc").is_dir():
            group = self._popen.pid
            wait_until(lambda: _group_stopped(group), timeout=10.0, what="server group stopped")

    def resume(self) -> None:
        """SIGCONT the group after ``pause``."""
        self._signal_group(signal.SIGCONT)

    def log_tail(self, lines: int = 30) -> str:
        """The last ``lines`` lines of the log, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _signal_leader(self, sig: signal.Signals) -> None:
        if self._popen is not None and self._popen.poll() is None:
            self._popen.send_signal(sig)

    def _signal_group(self, sig: signal.Signals) -> None:
        if self._popen is not None and self._popen.poll() is None:
            os.killpg(self._popen.pid, sig)


def _primary_group(user: str | None) -> int | None:
    if user is None:
        return None
    return pwd.getpwnam(user).pw_gid


def _children(pid: int) -> list[int]:
    """Direct children of ``pid``, read from /proc (empty where /proc is absent)."""
    found: list[int] = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        fields = _stat_fields(stat_file)
        # Field 4 of the stat file (index 1 here) is the parent pid.
        if fields is not None and len(fields) > 1 and fields[1] == str(pid):
            found.append(int(stat_file.parent.name))
    return found


def _stat_fields(stat_file: Path) -> list[str] | None:
    """The fields of a /proc stat file after the command name (state first), or None.

    The command name (field 2) may contain spaces: the split is after its closing
    parenthesis.
    """
    try:
        text = stat_file.read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


def _group_stopped(pgid: int) -> bool:
    """True when every thread of every process in group ``pgid`` is stopped (state T)."""
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        fields = _stat_fields(stat_file)
        # Field 5 of the stat file (index 2 here) is the process group.
        if fields is None or len(fields) < 3 or fields[2] != str(pgid):
            continue
        for task in stat_file.parent.glob("task/*/stat"):
            task_fields = _stat_fields(task)
            if task_fields is not None and task_fields[0] not in ("T", "t", "Z", "X"):
                return False
    return True


def _alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (killed, not yet reaped by its new parent) is not."""
    fields = _stat_fields(Path(f"/proc/{pid}/stat"))
    return fields is not None and fields[0] not in ("Z", "X")
