"""``python -m fleet_testing up`` runs servers until a signal and stops them cleanly."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import redis

from fleet_testing import wait_until
from fleet_testing.probes import tcp_open


def test_up_prints_urls_and_stops_on_sigterm(tmp_path: Path) -> None:
    env_file = tmp_path / "dev" / "fleet.env"
    proc = subprocess.Popen(
        [sys.executable, "-m", "fleet_testing", "up", "--dir", str(tmp_path / "dev"),
         "--only", "redis,nats"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_until(
            lambda: env_file.exists() and "FLEET_NATS_URL" in env_file.read_text(),
            timeout=60,
            what="fleet.env written",
            abort=lambda: None if proc.poll() is None else f"exited {proc.returncode}",
        )
        env = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
        assert redis.Redis.from_url(env["FLEET_REDIS_URL"]).ping()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert f"FLEET_REDIS_URL={env['FLEET_REDIS_URL']}" in out
    port = int(env["FLEET_REDIS_URL"].rsplit(":", 1)[1].split("/")[0])
    assert not tcp_open("127.0.0.1", port)


def test_up_with_unknown_kind_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "fleet_testing", "up", "--dir", str(tmp_path), "--only", "mysql"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert run.returncode == 2
    assert run.stderr.strip() == (
        "error: unknown server kind 'mysql': use one of nats, postgres, redis, mongo, s3"
    )
