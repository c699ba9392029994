"""Every worker's console script: --help, --version and subcommands touch no server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from fleet_runtime.workers import discover_workers

BIN = Path(sys.executable).parent
WORKERS = sorted(discover_workers())
MODULES = {name: name.replace("-", "_") for name in WORKERS}


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A listening socket every server setting points at: a connection would show up here."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    yield sock
    sock.close()


def _env(port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEET_")}
    for name in WORKERS:
        prefix = name.replace("-", "_").upper() + "_"
        env[f"{prefix}NATS_URL"] = f"nats://127.0.0.1:{port}"
        env[f"{prefix}POSTGRES_DSN"] = f"postgresql://x@127.0.0.1:{port}/x"
        env[f"{prefix}OWNER_DSN"] = f"postgresql://x@127.0.0.1:{port}/x"
        env[f"{prefix}REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
        env[f"{prefix}MONGO_URL"] = f"mongodb://127.0.0.1:{port}"
        env[f"{prefix}S3_ENDPOINT"] = f"127.0.0.1:{port}"
    return env


def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False, env=env)


def _nobody_connected(sock: socket.socket) -> bool:
    try:
        conn, _ = sock.accept()
    except BlockingIOError:
        return True
    conn.close()
    return False


def test_help_and_version_of_every_worker_touch_no_server(listener: socket.socket) -> None:
    env = _env(listener.getsockname()[1])
    calls = {}
    for name in WORKERS:
        calls[(name, "script --help")] = [str(BIN / name), "--help"]
        calls[(name, "module --help")] = [sys.executable, "-m", MODULES[name], "--help"]
        calls[(name, "script --version")] = [str(BIN / name), "--version"]
        calls[(name, "module --version")] = [sys.executable, "-m", MODULES[name], "--version"]
    with ThreadPoolExecutor(4) as pool:
        results = dict(zip(calls, pool.map(lambda a: _run(a, env), calls.values()), strict=True))
    for (name, how), proc in results.items():
        assert proc.returncode == 0, (name, how, proc.stderr)
        assert "Traceback" not in proc.stderr, (name, how)
        if how.endswith("--help"):
            assert proc.stdout.startswith(f"usage: {name}"), (name, how, proc.stdout)
            assert "--version" in proc.stdout
            assert f"{name.replace('-', '_').upper()}_NATS_URL" in proc.stdout
        else:
            assert proc.stdout.strip() == f"{name} 0.1.0", (name, how, proc.stdout)
    assert _nobody_connected(listener)


@pytest.mark.parametrize("worker", ["trade-recorder", "bot-lifecycle"])
def test_migrate_is_a_subcommand_with_its_own_help(worker: str, listener: socket.socket) -> None:
    env = _env(listener.getsockname()[1])
    top = _run([str(BIN / worker), "--help"], env)
    assert "migrate" in top.stdout
    proc = _run([str(BIN / worker), "migrate", "--help"], env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"usage: {worker} migrate")
    assert f"{worker.replace('-', '_').upper()}_OWNER_DSN" in proc.stdout
    assert _nobody_connected(listener)


def test_a_bad_argument_is_one_line_and_exit_2(listener: socket.socket) -> None:
    env = _env(listener.getsockname()[1])
    proc = _run([str(BIN / "market-ingest"), "--partiton", "1"], env)
    assert proc.returncode == 2
    assert "unrecognized arguments: --partiton" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert _nobody_connected(listener)


def test_migrate_without_an_owner_dsn_names_the_setting() -> None:
    env = {k: v for k, v in os.environ.items() if "OWNER_DSN" not in k}
    proc = _run([str(BIN / "trade-recorder"), "migrate"], env)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: no owner DSN: pass --dsn or set TRADE_RECORDER_OWNER_DSN"
    ]
