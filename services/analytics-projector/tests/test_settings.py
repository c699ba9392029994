"""Bad configuration stops analytics-projector at start with the setting named, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from analytics_projector.settings import AnalyticsProjectorSettings
from fleet_runtime.errors import ConfigError
from fleet_runtime.settings import load_settings


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        (
            "ANALYTICS_PROJECTOR_MONGO_URL",
            "http://127.0.0.1:27017",
            "ANALYTICS_PROJECTOR_MONGO_URL",
        ),
        ("ANALYTICS_PROJECTOR_MONGO_URL", "mongodb://", "ANALYTICS_PROJECTOR_MONGO_URL"),
        ("ANALYTICS_PROJECTOR_MONGO_DATABASE", "", "ANALYTICS_PROJECTOR_MONGO_DATABASE"),
        ("ANALYTICS_PROJECTOR_MONGO_DATABASE", "a.b", "ANALYTICS_PROJECTOR_MONGO_DATABASE"),
        ("ANALYTICS_PROJECTOR_MONGO_TIMEOUT_S", "0", "ANALYTICS_PROJECTOR_MONGO_TIMEOUT_S"),
    ],
)
def test_a_bad_setting_is_named(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, named: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=named):
        load_settings(AnalyticsProjectorSettings)


def test_the_url_with_a_password_is_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANALYTICS_PROJECTOR_MONGO_URL", "mongodb://u:s3cret@")
    with pytest.raises(ConfigError) as caught:
        load_settings(AnalyticsProjectorSettings)
    assert "s3cret" not in str(caught.value)


def test_the_worker_exits_2_with_one_message_for_a_bad_url() -> None:
    env = {**os.environ, "ANALYTICS_PROJECTOR_MONGO_URL": "redis://127.0.0.1:6379"}
    proc = subprocess.run(
        [sys.executable, "-m", "analytics_projector"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "ANALYTICS_PROJECTOR_MONGO_URL" in proc.stderr
    assert "Traceback" not in proc.stderr
