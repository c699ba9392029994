"""Settings, logging and the worker commands: clear errors for user mistakes, no tracebacks."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import nats
import pytest
from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from fleet_runtime.errors import ConfigError
from fleet_runtime.heap import settle_heap
from fleet_runtime.logs import configure_logging, get_logger
from fleet_runtime.settings import WorkerSettings, load_settings
from fleet_runtime.topology import apply, load_topology
from fleet_runtime.workers import discover_workers
from fleet_testing import Fleet
from fleet_testing.topologies import StreamsFile
from trade_recorder.settings import TradeRecorderSettings

REPO = Path(__file__).resolve().parents[3]


def run_fleet(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fleet_runtime.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
    )


def test_settings_read_the_service_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADE_RECORDER_BATCH_SIZE", "250")
    monkeypatch.setenv("TRADE_RECORDER_POSTGRES_DSN", "postgresql://u:hunter2@db/x")
    settings = load_settings(TradeRecorderSettings)
    assert settings.batch_size == 250
    assert isinstance(settings.postgres_dsn, SecretStr)
    assert settings.postgres_dsn.get_secret_value() == "postgresql://u:hunter2@db/x"
    # Secrets never show in a repr (which is what a log line would carry).
    assert "hunter2" not in repr(settings)


def test_bad_setting_names_the_variable_and_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADE_RECORDER_BATCH_SIZE", "lots")
    with pytest.raises(ConfigError) as err:
        load_settings(TradeRecorderSettings)
    assert "TRADE_RECORDER_BATCH_SIZE" in str(err.value)
    assert "'lots'" in str(err.value)
    assert err.value.fix is not None


class _ListSettings(WorkerSettings):
    model_config = SettingsConfigDict(env_prefix="LISTY_", extra="ignore", frozen=True)

    names: list[str] = ["a"]


def test_a_list_setting_that_is_not_json_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LISTY_NAMES", "lifecycle,trading")
    with pytest.raises(ConfigError) as err:
        load_settings(_ListSettings)
    assert "LISTY_NAMES is not valid JSON" in str(err.value)
    assert err.value.fix is not None
    monkeypatch.setenv("LISTY_NAMES", '["lifecycle", "trading"]')
    assert load_settings(_ListSettings).names == ["lifecycle", "trading"]


def test_out_of_range_setting_is_refused() -> None:
    with pytest.raises(ConfigError, match="BATCH_SIZE"):
        load_settings(WorkerSettings, batch_size=0)


def test_a_negative_collector_threshold_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADE_RECORDER_GC_GEN0_THRESHOLD", "-5")
    with pytest.raises(ConfigError, match="TRADE_RECORDER_GC_GEN0_THRESHOLD"):
        load_settings(TradeRecorderSettings)


def test_settle_heap_freezes_start_up_objects_and_raises_the_young_threshold() -> None:
    before = gc.get_threshold()
    try:
        settle_heap(12_345)
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (12_345, before[1], before[2])
        gc.unfreeze()
        settle_heap(0)  # 0 keeps the threshold as it is
        assert gc.get_threshold() == (12_345, before[1], before[2])
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_json_logs_off_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "json")
    get_logger("test").info("trade_recorded", trade_id="t-1", seq=42)
    line = capsys.readouterr().err.strip().splitlines()[-1]
    record = json.loads(line)
    assert record["event"] == "trade_recorded"
    assert record["trade_id"] == "t-1"
    assert record["seq"] == 42
    assert record["level"] == "info"
    assert record["logger"] == "test"


def test_every_service_registers_a_worker() -> None:
    workers = discover_workers()
    assert set(workers) == {
        "bot-lifecycle",
        "trade-recorder",
        "market-ingest",
        "analytics-projector",
        "backup-runner",
    }
    stores = {name: spec.store for name, spec in workers.items()}
    assert stores["trade-recorder"] == "PostgreSQL"
    assert stores["market-ingest"] == "Redis"


def test_unknown_worker_is_a_clear_error() -> None:
    proc = run_fleet("worker", "run", "trade-recoder")
    assert proc.returncode == 2
    assert "unknown worker 'trade-recoder'" in proc.stderr
    assert "trade-recorder" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_env_fails_fast_without_traceback() -> None:
    proc = run_fleet(
        "worker", "run", "trade-recorder", env={"TRADE_RECORDER_BATCH_MAX_WAIT_MS": "-5"}
    )
    assert proc.returncode == 2
    assert "TRADE_RECORDER_BATCH_MAX_WAIT_MS" in proc.stderr
    assert "fix:" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_worker_list_shows_every_worker() -> None:
    proc = run_fleet("worker", "list")
    assert proc.returncode == 0
    for name in ("bot-lifecycle", "trade-recorder", "market-ingest", "backup-runner"):
        assert name in proc.stdout


async def test_a_partitioned_consumer_without_partition_says_how_to_run_it(
    isolated_fleet: Fleet, postgres_database: str, tmp_path: Path
) -> None:
    streams = (
        StreamsFile(REPO / "streams.yaml")
        .partition("TRADES", subjects="trade.*.*", count=2, key=[2], workers=["trade-recorder"])
        .write(tmp_path / "streams.yaml")
    )
    nc = await nats.connect(isolated_fleet.nats.url)
    try:
        await apply(nc.jetstream(), load_topology(streams))
    finally:
        await nc.close()
    env = {
        **isolated_fleet.nats.env(),  # FLEET_NATS_CREDS: the worker connects as itself
        "TRADE_RECORDER_NATS_URL": isolated_fleet.nats.url,
        "TRADE_RECORDER_STREAMS_FILE": str(streams),
        "TRADE_RECORDER_POSTGRES_DSN": postgres_database,
    }
    proc = await asyncio.to_thread(run_fleet, "worker", "run", "trade-recorder", env=env)
    assert proc.returncode == 2, proc.stderr
    assert "it is partitioned: trade-recorder-p0, trade-recorder-p1" in proc.stderr
    assert "--partition K` with K from 0 to 1" in proc.stderr
    assert "Traceback" not in proc.stderr


async def test_a_store_unreachable_at_start_names_the_setting(isolated_fleet: Fleet) -> None:
    nc = await nats.connect(isolated_fleet.nats.url)
    try:
        await apply(nc.jetstream(), load_topology(REPO / "streams.yaml"))
    finally:
        await nc.close()
    env = {
        **isolated_fleet.nats.env(),  # FLEET_NATS_CREDS: the worker connects as itself
        "TRADE_RECORDER_NATS_URL": isolated_fleet.nats.url,
        "TRADE_RECORDER_STREAMS_FILE": str(REPO / "streams.yaml"),
        # Nothing listens on port 1.
        "TRADE_RECORDER_POSTGRES_DSN": "postgresql://nobody@127.0.0.1:1/none",
        "TRADE_RECORDER_STARTUP_TIMEOUT_S": "1",
        "TRADE_RECORDER_LOG_FORMAT": "json",
    }
    proc = await asyncio.to_thread(run_fleet, "worker", "run", "trade-recorder", env=env)
    assert proc.returncode == 1, proc.stderr
    last = json.loads(proc.stderr.strip().splitlines()[-1])
    assert last["event"] == "server_unreachable"
    assert last["server"] == "PostgreSQL"
    assert last["setting"] == "TRADE_RECORDER_POSTGRES_DSN"
    assert "ConnectionRefusedError" in last["error"]
    assert "point TRADE_RECORDER_POSTGRES_DSN at a running one" in last["fix"]
    assert "Traceback" not in proc.stderr
