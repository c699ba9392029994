"""The pure parts of the deploy checks: PromQL metric names, interpolation, image pins,
settings requirements."""

from __future__ import annotations

import pytest
from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from fleet_runtime.deploycheck.composefile import interpolate
from fleet_runtime.deploycheck.images import dockerfile_images, unpinned_reason
from fleet_runtime.deploycheck.metricnames import metric_names_in
from fleet_runtime.deploycheck.workerenv import check_worker_env, hosts_in, required_settings
from fleet_runtime.settings import WorkerSettings
from fleet_runtime.workers import WorkerSpec


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("fleet_worker_ready == 0", {"fleet_worker_ready"}),
        (
            'sum by (worker, le) (rate(fleet_handle_seconds_bucket{worker=~"$worker"}'
            "[$__rate_interval]))",
            {"fleet_handle_seconds_bucket"},
        ),
        (
            "histogram_quantile(0.99, sum(rate(a_bucket[5m])) by (le)) > 1e3",
            {"a_bucket"},
        ),
        ('x_total offset 5m / on(worker) group_left(error_class) y{z="by (q)"}', {"x_total", "y"}),
        ("time() - last_backup_seconds > 3600 and up == 1", {"last_backup_seconds", "up"}),
        ("sum without (instance) (increase(c_total[${__range}]))", {"c_total"}),
    ],
)
def test_metric_names_in_a_query(query: str, names: set[str]) -> None:
    assert metric_names_in(query) == names


def test_interpolation_follows_compose_rules() -> None:
    missing: set[str] = set()
    variables = {"A": "1", "EMPTY": ""}
    text = "$A ${A} ${B:-two} ${EMPTY:-three} ${EMPTY-four} ${A:+five} $$A ${C:?need C} ${D}"
    assert interpolate(text, variables, missing) == "1 1 two three  five $A  "
    assert missing == {"C", "D"}


@pytest.mark.parametrize(
    ("ref", "built_here", "pinned"),
    [
        ("postgres:18.6", False, True),
        ("postgres:18", False, False),
        ("mongo:8.0", False, False),
        ("mongo:8.0.29", False, True),
        ("nats:2.14.5-alpine", False, True),
        ("nats:alpine", False, False),
        ("chrislusf/seaweedfs:4.48", False, True),
        ("ghcr.io/astral-sh/uv:0.13.9", False, True),
        ("ghcr.io/astral-sh/uv:0.13", False, False),
        ("localhost:5000/tool:1.2.3", False, True),
        ("redis", False, False),
        ("redis:latest", False, False),
        ("redis@sha256:" + "a" * 64, False, True),
        ("tradefleet/trade-recorder:${TRADEFLEET_VERSION:-0.1.0}", True, True),
        ("tradefleet/trade-recorder:${TRADEFLEET_VERSION:-0.1.0}", False, False),
        ("tradefleet/trade-recorder:latest", True, False),
    ],
)
def test_image_pins(ref: str, built_here: bool, pinned: bool) -> None:
    assert (unpinned_reason(ref, built_here=built_here) is None) is pinned


def test_dockerfile_images_leave_out_build_stages() -> None:
    text = (
        "FROM python:3.11.16-slim AS build\n"
        "COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /usr/local/bin/uv\n"
        "FROM build AS test\n"
        "FROM scratch\n"
        "COPY --from=build /src /src\n"
    )
    assert dockerfile_images(text) == ["python:3.11.16-slim", "ghcr.io/astral-sh/uv:0.13.9"]


def test_hosts_in_urls_lists_and_endpoints() -> None:
    assert hosts_in("nats://nats-0:4222, nats://nats-1:4222") == {"nats-0", "nats-1"}
    assert hosts_in("postgresql://u:p@postgres:5432/db") == {"postgres"}
    assert hosts_in("s3:8333") == {"s3"}


class _Settings(WorkerSettings):
    model_config = SettingsConfigDict(env_prefix="DEMO_", extra="ignore", frozen=True)

    store_url: SecretStr = Field(SecretStr("redis://127.0.0.1:6379/0"))
    api_key: SecretStr = Field(SecretStr("dev-key"))
    optional_dsn: SecretStr | None = None
    batch_size: int = 500


SPEC = WorkerSpec(name="demo", store="Redis", summary="demo", settings_cls=_Settings)
GOOD = {
    "DEMO_NATS_URL": "nats://nats-0:4222",
    "DEMO_STREAMS_FILE": "/etc/tradefleet/streams.yaml",
    "DEMO_HEALTH_HOST": "0.0.0.0",
    "DEMO_HEALTH_PORT": "8080",
    "DEMO_STORE_URL": "redis://redis:6379/0",
    "DEMO_API_KEY": "from-a-secret",
}


def test_required_settings_are_the_ones_a_container_cannot_default() -> None:
    assert set(required_settings(_Settings)) == {
        "nats_url",
        "streams_file",
        "health_host",
        "health_port",
        "store_url",
        "api_key",
    }


def test_a_complete_environment_passes() -> None:
    report = check_worker_env(SPEC, GOOD, "here", is_literal_secret=lambda _: False)
    assert report.messages() == []


def test_each_environment_mistake_is_named() -> None:
    env = {**GOOD, "DEMO_BATCH_SIZ": "10", "DEMO_BATCH_SIZE": "many", "OTHER_X": "1"}
    del env["DEMO_STORE_URL"]
    report = check_worker_env(SPEC, env, "here", is_literal_secret={"DEMO_API_KEY"}.__contains__)
    lines = report.messages()
    assert len(lines) == 5, lines
    assert any("DEMO_BATCH_SIZ, but demo has no such setting" in x for x in lines)
    assert any("did you mean DEMO_BATCH_SIZE?" in x for x in lines)
    assert any("DEMO_BATCH_SIZE: demo would refuse this value" in x for x in lines)
    assert any("OTHER_X, which demo does not read" in x for x in lines)
    assert any("does not set DEMO_STORE_URL" in x for x in lines)
    assert any("writes the credential DEMO_API_KEY into the file" in x for x in lines)
