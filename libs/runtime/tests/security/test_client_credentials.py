"""How a client finds its NATS credentials: a seed file, a .creds file or the directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet_runtime.errors import ConfigError
from fleet_runtime.natsauth import credentials_options, nats_auth
from fleet_runtime.security.credentials import ensure_seeds
from fleet_runtime.settings import load_settings
from trade_recorder.settings import TradeRecorderSettings


def test_a_directory_gives_each_user_its_own_seed(tmp_path: Path) -> None:
    ensure_seeds(tmp_path, ["trade-recorder", "admin"])
    options = credentials_options(tmp_path, "trade-recorder", "X_NATS_CREDS")
    assert options == {
        "inbox_prefix": "_INBOX.trade-recorder",
        "nkeys_seed": str(tmp_path / "trade-recorder.nk"),
    }
    with pytest.raises(ConfigError) as missing:
        credentials_options(tmp_path, "market-ingest", "X_NATS_CREDS")
    assert "market-ingest.nk" in str(missing.value)
    assert "X_NATS_CREDS" in (missing.value.fix or "")


def test_a_bad_seed_file_is_named_and_its_content_hidden(tmp_path: Path) -> None:
    seed = tmp_path / "w.nk"
    seed.write_text("SUNOTAREALSEEDATALL-but-a-secret-anyway\n")
    with pytest.raises(ConfigError) as bad:
        credentials_options(seed, "w", "X_NATS_CREDS")
    assert str(seed) in str(bad.value)
    assert "NOTAREALSEED" not in str(bad.value) + (bad.value.fix or "")


def test_a_creds_file_with_a_user_jwt_is_passed_as_credentials(tmp_path: Path) -> None:
    creds = tmp_path / "w.creds"
    creds.write_text("-----BEGIN NATS USER JWT-----\neyJ0\n------END NATS USER JWT------\n")
    options = credentials_options(creds, "w", "X_NATS_CREDS")
    assert options["user_credentials"] == str(creds)


def test_the_worker_variable_wins_over_the_fleet_one_and_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ensure_seeds(tmp_path / "fleet", ["trade-recorder"])
    ensure_seeds(tmp_path / "own", ["trade-recorder"])
    monkeypatch.setenv("FLEET_NATS_CREDS", str(tmp_path / "fleet"))
    auth = nats_auth(load_settings(TradeRecorderSettings), "trade-recorder")
    assert auth.setting == "FLEET_NATS_CREDS"
    assert auth.options["nkeys_seed"] == str(tmp_path / "fleet" / "trade-recorder.nk")
    own = tmp_path / "own" / "trade-recorder.nk"
    monkeypatch.setenv("TRADE_RECORDER_NATS_CREDS", str(own))
    auth = nats_auth(load_settings(TradeRecorderSettings), "trade-recorder")
    assert auth.setting == "TRADE_RECORDER_NATS_CREDS"
    assert auth.options["nkeys_seed"] == str(own)
    monkeypatch.setenv("TRADE_RECORDER_NATS_CREDS", "")
    monkeypatch.delenv("FLEET_NATS_CREDS")
    assert nats_auth(load_settings(TradeRecorderSettings), "trade-recorder").anonymous
