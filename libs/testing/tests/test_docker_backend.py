"""FLEET_TEST_BACKEND=docker: containers where an engine exists, a clear error where not."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from fleet_testing import Fleet
from fleet_testing.errors import LauncherConfigError


def _engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(["docker", "info"], capture_output=True, timeout=30, check=False)
    return probe.returncode == 0


@pytest.mark.skipif(_engine_answers(), reason="a Docker engine is present here")
def test_docker_backend_without_an_engine_names_the_fix(tmp_path) -> None:
    fleet = Fleet(tmp_path, environ={"FLEET_TEST_BACKEND": "docker"})
    try:
        with pytest.raises(LauncherConfigError) as err:
            fleet.start("redis")
        message = str(err.value)
        assert "FLEET_TEST_BACKEND=docker" in message
        assert "unset FLEET_TEST_BACKEND" in message
        # Nothing was launched locally behind the user's back.
        assert not (tmp_path / "redis").exists()
    finally:
        fleet.stop()


@pytest.mark.skipif(not _engine_answers(), reason="needs a Docker engine")
def test_docker_backend_runs_redis_in_a_container(tmp_path) -> None:
    redis = pytest.importorskip("redis")
    with Fleet(tmp_path, environ={"FLEET_TEST_BACKEND": "docker"}) as fleet:
        fleet.start("redis")
        client = redis.Redis.from_url(fleet.redis.url)
        client.set("k", "v")
        assert client.get("k") == b"v"
        assert not fleet.redis.managed
