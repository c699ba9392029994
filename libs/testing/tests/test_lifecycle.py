"""Stop, kill, pause, port conflicts, external servers and the errors users see."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest
import redis

from fleet_testing import (
    Fleet,
    LauncherConfigError,
    NatsServer,
    RedisServer,
    ServerKind,
    ServerNotInstalled,
    ServerNotManaged,
    ServerStartError,
    wait_until,
)
from fleet_testing.probes import tcp_open


def _state(stat_file: Path) -> str | None:
    """The state letter (R, S, T, Z, ...) in a /proc stat file, None when it is gone."""
    try:
        stat = stat_file.read_text()
    except OSError:
        return None
    return stat[stat.rfind(")") + 2]


def _pid_alive(pid: int) -> bool:
    """True for a live process; a killed child waiting to be reaped (Z) counts as dead."""
    return _state(Path(f"/proc/{pid}/stat")) not in (None, "Z")


def test_stop_closes_the_port_and_start_reopens_it(isolated_fleet: Fleet) -> None:
    server = isolated_fleet.redis
    pid = server.pid
    assert pid is not None

    server.stop()

    assert not server.running
    assert not tcp_open(server.host, server.port)
    assert not _pid_alive(pid)
    server.start()
    assert redis.Redis.from_url(server.url).ping()


def test_kill_takes_down_postgres_backends_too(isolated_fleet: Fleet) -> None:
    server = isolated_fleet.postgres
    postmaster = server.pid
    assert postmaster is not None
    children = subprocess.run(
        ["pgrep", "-P", str(postmaster)], capture_output=True, text=True, check=True
    ).stdout.split()
    assert len(children) >= 2  # checkpointer, walwriter…, each its own session leader

    server.kill()

    assert not _pid_alive(postmaster)
    assert [pid for pid in children if _pid_alive(int(pid))] == []
    assert server.start().psql("SELECT 1") == "1"


def test_pause_stalls_clients_until_resume(isolated_fleet: Fleet) -> None:
    server = isolated_fleet.redis
    client = redis.Redis.from_url(server.url, socket_timeout=0.3)
    server.pause()
    try:
        with pytest.raises(redis.TimeoutError):
            client.ping()
    finally:
        server.resume()
    wait_until(lambda: bool(client.ping()), timeout=10, what="redis answers after resume")
    assert client.set("after", "resume")


def _thread_states(pid: int) -> list[str | None]:
    """The state letter of each thread of ``pid`` (R, S, T, ...)."""
    return [_state(task) for task in Path(f"/proc/{pid}/task").glob("*/stat")]


def test_pause_returns_once_every_thread_is_stopped(isolated_fleet: Fleet) -> None:
    """``kill`` only queues SIGSTOP: right after it, a thread may still run (and answer a
    request). ``pause`` returns only when none does, every time."""
    server = isolated_fleet.nats
    pid = server.pid
    assert pid is not None
    for _ in range(200):
        server.pause()
        try:
            states = _thread_states(pid)
            assert len(states) > 1  # nats-server runs several threads
            assert set(states) == {"T"}, states
        finally:
            server.resume()


def test_stopping_a_paused_server_still_stops_it(isolated_fleet: Fleet) -> None:
    server = isolated_fleet.nats
    server.pause()
    server.stop()
    assert not server.running


def test_auto_port_taken_before_start_moves_to_a_free_one(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis")
    squatted = server.port
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", squatted))
        squatter.listen()
        server.start()
    try:
        assert server.port != squatted
        assert server.running
        assert server.pid is not None
        assert redis.Redis.from_url(server.url).ping()
    finally:
        server.stop()


def test_fixed_port_taken_fails_with_the_servers_own_words(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        fleet = Fleet(tmp_path, ports={"nats": port}, use_external=False)
        with pytest.raises(ServerStartError) as caught:
            fleet.start("nats")
        fleet.stop()
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message
    assert "address already in use" in message.lower()  # the log tail, not a guess


def test_temp_dir_is_removed_and_a_given_dir_is_kept(tmp_path: Path) -> None:
    with Fleet() as temporary:
        temporary.start("redis")
        temp_dir = temporary.base_dir
        assert (temp_dir / "redis" / "server.log").exists()
    assert not temp_dir.exists()

    with Fleet(tmp_path / "dev") as kept:
        kept.start("redis")
    assert (tmp_path / "dev" / "fleet.env").read_text().startswith("FLEET_REDIS_URL=redis://")


def test_dev_dir_keeps_postgres_data_between_fleets(tmp_path: Path) -> None:
    with Fleet(tmp_path / "dev", use_external=False) as first:
        first.postgres.psql("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('yes')")
    with Fleet(tmp_path / "dev", use_external=False) as second:
        assert second.postgres.psql("SELECT v FROM kept") == "yes"


def test_stopped_fleet_refuses_new_servers(tmp_path: Path) -> None:
    fleet = Fleet(tmp_path)
    fleet.stop()
    with pytest.raises(LauncherConfigError, match="create a new Fleet"):
        fleet.start("redis")


def test_external_server_from_env_is_used_not_launched(isolated_fleet: Fleet) -> None:
    real = isolated_fleet.redis
    fleet = Fleet(environ={"FLEET_REDIS_URL": real.url})
    try:
        external = fleet.redis
        assert not external.managed
        assert external.url == real.url
        assert external.pid is None
        assert not (fleet.base_dir / "redis").exists()
        with pytest.raises(ServerNotManaged, match="Unset FLEET_REDIS_URL"):
            external.restart()
    finally:
        fleet.stop()
    assert real.running  # stopping the fleet left the external server alone


def test_external_url_that_nobody_answers_says_what_to_do(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    NatsServer.start_timeout = 0.3
    try:
        fleet = Fleet(tmp_path, environ={"FLEET_NATS_URL": f"nats://127.0.0.1:{dead}"})
        with pytest.raises(ServerStartError, match="unset FLEET_NATS_URL"):
            fleet.start("nats")
    finally:
        del NatsServer.start_timeout
        fleet.stop()


@pytest.mark.parametrize(
    ("url", "fragment"),
    [("localhost", "has no host:port"), ("redis://[::1", "is not a valid URL")],
)
def test_malformed_external_url_is_named(tmp_path: Path, url: str, fragment: str) -> None:
    fleet = Fleet(tmp_path, environ={"FLEET_REDIS_URL": url})
    with pytest.raises(LauncherConfigError, match="FLEET_REDIS_URL") as caught:
        fleet.start("redis")
    fleet.stop()
    assert fragment in str(caught.value)


def test_unknown_kind_lists_the_valid_ones(tmp_path: Path) -> None:
    with Fleet(tmp_path) as fleet, pytest.raises(LauncherConfigError) as caught:
        fleet.start("kafka")
    assert str(caught.value) == (
        "unknown server kind 'kafka': use one of nats, postgres, redis, mongo, s3"
    )


def test_missing_program_names_the_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLEET_REDIS_SERVER_BIN", str(tmp_path / "no-such-redis"))
    with Fleet(tmp_path / "f") as fleet, pytest.raises(ServerNotInstalled) as caught:
        fleet.start("redis")
    assert "FLEET_REDIS_SERVER_BIN" in str(caught.value)
    assert "not an executable file" in str(caught.value)


def test_env_var_names_follow_the_kind() -> None:
    assert [k.env_var for k in ServerKind] == [
        "FLEET_NATS_URL",
        "FLEET_POSTGRES_DSN",
        "FLEET_REDIS_URL",
        "FLEET_MONGO_URL",
        "FLEET_S3_ENDPOINT",
    ]


def test_bad_database_name_is_refused(isolated_fleet: Fleet) -> None:
    with pytest.raises(LauncherConfigError, match="lowercase letters"):
        isolated_fleet.postgres.create_database('x"; DROP DATABASE postgres; --')
