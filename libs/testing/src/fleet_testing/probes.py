"""Readiness probes and a deadline-bound wait, shared by every server kind."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Callable

POLL_INTERVAL = 0.02

# Ports handed out by this process: the kernel may offer the same free port twice when
# nothing is bound to it yet, and two servers of one fleet must never share a port.
_handed_out: set[int] = set()
_handed_out_lock = threading.Lock()


def wait_until(
    condition: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    abort: Callable[[], str | None] | None = None,
) -> None:
    """Poll ``condition`` until it is true; raise ``TimeoutError`` after ``timeout`` seconds.

    ``abort`` is asked between polls; a non-None answer (the reason) stops the wait at once
    with ``RuntimeError`` so a crashed process is reported immediately, not at the deadline.
    """
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return
        if abort is not None:
            reason = abort()
            if reason is not None:
                raise RuntimeError(reason)
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} not true after {timeout:.1f}s")
        time.sleep(POLL_INTERVAL)


def tcp_open(host: str, port: int) -> bool:
    """True when something accepts a TCP connection on host:port."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _http_get(host: str, port: int, path: str) -> bytes | None:
    """The body of ``GET path`` when it answers with a 2xx status, else None."""
    conn = http.client.HTTPConnection(host, port, timeout=1.0)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
        return body if 200 <= response.status < 300 else None
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def http_ok(host: str, port: int, path: str = "/") -> bool:
    """True when ``GET path`` answers with a 2xx status."""
    return _http_get(host, port, path) is not None


def http_json(host: str, port: int, path: str) -> object | None:
    """The JSON body of ``GET path`` when it answers 2xx, else None."""
    body = _http_get(host, port, path)
    try:
        return None if body is None else json.loads(body)
    except ValueError:
        return None


def redis_command(host: str, port: int, *args: str, db: int = 0) -> bytes | None:
    """Send one RESP command (after ``SELECT db``) and return the first reply line, or None."""

    def encode(parts: tuple[str, ...]) -> bytes:
        out = [f"*{len(parts)}\r\n".encode()]
        for part in parts:
            raw = part.encode()
            out.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
        return b"".join(out)

    try:
        with socket.create_connection((host, port), timeout=1.0) as sock:
            sock.sendall(encode(("SELECT", str(db))) + encode(args))
            reader = sock.makefile("rb")
            selected = reader.readline()
            if not selected.startswith(b"+OK"):
                return selected.rstrip()
            return reader.readline().rstrip()
    except OSError:
        return None


def port_is_free(host: str, port: int) -> bool:
    """True when host:port can be bound right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def free_port(host: str = "127.0.0.1") -> int:
    """Ask the kernel for a port that is free on ``host`` now.

    Another process may take it before the server binds; servers retry with a new port
    when that happens on their first start.
    """
    with _handed_out_lock:
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind((host, 0))
                port: int = sock.getsockname()[1]
            if port not in _handed_out:
                _handed_out.add(port)
                return port
