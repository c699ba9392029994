"""FLEET_* variables: every worker's fallback for its servers; the worker's own one wins."""

from __future__ import annotations

from pathlib import Path

import pytest

from analytics_projector.settings import AnalyticsProjectorSettings
from backup_runner.settings import BackupRunnerSettings
from fleet_runtime.deploycheck.workerenv import check_worker_env
from fleet_runtime.errors import ConfigError
from fleet_runtime.settings import load_settings
from fleet_runtime.settings_table import BEGIN, END, settings_table
from fleet_runtime.workers import discover_workers
from market_ingest.settings import MarketIngestSettings
from trade_recorder.settings import TradeRecorderSettings

REPO = Path(__file__).resolve().parents[4]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NATS_URL", "POSTGRES_DSN", "REDIS_URL", "MONGO_URL", "S3_ENDPOINT"):
        monkeypatch.delenv(f"FLEET_{name}", raising=False)
    for prefix in ("TRADE_RECORDER_", "MARKET_INGEST_", "ANALYTICS_PROJECTOR_", "BACKUP_RUNNER_"):
        for name in ("NATS_URL", "POSTGRES_DSN", "REDIS_URL", "MONGO_URL", "S3_ENDPOINT"):
            monkeypatch.delenv(f"{prefix}{name}", raising=False)


def test_every_worker_falls_back_to_the_fleet_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEET_NATS_URL", "nats://nats.fleet:4222")
    monkeypatch.setenv("FLEET_POSTGRES_DSN", "postgresql://tr:pw@pg.fleet/tradefleet")
    monkeypatch.setenv("FLEET_REDIS_URL", "redis://redis.fleet:6379/0")
    monkeypatch.setenv("FLEET_MONGO_URL", "mongodb://mongo.fleet:27017")
    monkeypatch.setenv("FLEET_S3_ENDPOINT", "s3.fleet:9000")
    for cls in (
        TradeRecorderSettings,
        MarketIngestSettings,
        AnalyticsProjectorSettings,
        BackupRunnerSettings,
    ):
        assert load_settings(cls).nats_url == "nats://nats.fleet:4222"
    recorder = load_settings(TradeRecorderSettings)
    assert recorder.postgres_dsn.get_secret_value() == "postgresql://tr:pw@pg.fleet/tradefleet"
    assert "pw@" not in repr(recorder)
    ingest = load_settings(MarketIngestSettings)
    assert ingest.redis_url.get_secret_value() == "redis://redis.fleet:6379/0"
    projector = load_settings(AnalyticsProjectorSettings)
    assert projector.mongo_url.get_secret_value() == "mongodb://mongo.fleet:27017"
    assert load_settings(BackupRunnerSettings).s3_endpoint == "s3.fleet:9000"


def test_the_worker_variable_wins_over_the_fleet_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEET_NATS_URL", "nats://nats.fleet:4222")
    monkeypatch.setenv("TRADE_RECORDER_NATS_URL", "nats://own:4222")
    monkeypatch.setenv("FLEET_REDIS_URL", "redis://redis.fleet:6379/0")
    monkeypatch.setenv("MARKET_INGEST_REDIS_URL", "redis://own:6379/1")
    assert load_settings(TradeRecorderSettings).nats_url == "nats://own:4222"
    assert load_settings(MarketIngestSettings).nats_url == "nats://nats.fleet:4222"
    assert load_settings(MarketIngestSettings).redis_url.get_secret_value() == (
        "redis://own:6379/1"
    )


def test_unset_everywhere_keeps_the_default() -> None:
    assert load_settings(TradeRecorderSettings).nats_url == "nats://127.0.0.1:4222"


def test_a_bad_fleet_value_names_the_fleet_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEET_MONGO_URL", "http://not-mongo")
    with pytest.raises(ConfigError) as err:
        load_settings(AnalyticsProjectorSettings)
    assert "FLEET_MONGO_URL: " in str(err.value)
    assert "ANALYTICS_PROJECTOR_MONGO_URL" not in str(err.value)


def test_settings_that_are_not_addresses_have_no_fleet_fallback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FLEET_BATCH_SIZE", "7")
    assert load_settings(TradeRecorderSettings).batch_size == 500


def test_the_readme_table_is_generated_from_the_settings_classes() -> None:
    readme = (REPO / "README.md").read_text()
    start, end = readme.index(BEGIN) + len(BEGIN) + 1, readme.index(END)
    assert readme[start:end] == settings_table(discover_workers()), (
        "README settings table is stale: run `./fleetw worker settings --readme README.md`"
    )
    assert "| `<PREFIX>NATS_URL` | `FLEET_NATS_URL` | all |" in readme
    assert "| `<PREFIX>S3_ENDPOINT` | `FLEET_S3_ENDPOINT` |" in readme


def test_the_deploy_check_takes_a_fleet_variable_for_the_worker_one() -> None:
    spec = discover_workers()["market-ingest"]
    env = {
        "FLEET_NATS_URL": "nats://nats-0:4222",
        "FLEET_REDIS_URL": "redis://redis:6379/0",
        "MARKET_INGEST_STREAMS_FILE": "/etc/tradefleet/streams.yaml",
        "MARKET_INGEST_HEALTH_HOST": "0.0.0.0",
        "MARKET_INGEST_HEALTH_PORT": "8080",
    }
    assert check_worker_env(spec, env, "here", is_literal_secret=lambda _: False).messages() == []
    projector = discover_workers()["analytics-projector"]
    bad = {k.replace("MARKET_INGEST_", "ANALYTICS_PROJECTOR_"): v for k, v in env.items()}
    bad["FLEET_MONGO_URL"] = "http://not-mongo"
    lines = check_worker_env(projector, bad, "here", is_literal_secret=lambda _: False).messages()
    assert len(lines) == 1, lines
    assert "MONGO_URL: analytics-projector would refuse this value" in lines[0]
