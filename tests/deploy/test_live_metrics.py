"""The metrics the alert rules and the dashboard query are on a running worker's /metrics.

market-ingest runs as `fleet worker run` against real NATS and Redis; its /metrics page
carries the runtime's metrics and its own. Every metric name a rule or panel uses must be
there (or be one Prometheus writes itself), and every name on the page must be one that
`fleet deploy check` knows from the registries.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
from pathlib import Path

from fleet_runtime.deploycheck.metricnames import (
    PROMETHEUS_SERIES,
    exported_metric_names,
    metric_names_in,
)
from fleet_runtime.deploycheck.monitoring import dashboard_expressions, rule_expressions
from fleet_testing import Fleet, free_port
from fleet_testing.probes import wait_until
from fleet_testing.workerprocs import start_worker

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "deploy/monitoring"
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
}


def scrape(port: int) -> str | None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2.0)
    try:
        conn.request("GET", "/metrics")
        response = conn.getresponse()
        body = response.read().decode()
        return body if response.status == 200 else None
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def names_on_page(page: str) -> set[str]:
    """Sample names from the page's `# TYPE` lines (labelled metrics may have no sample yet)."""
    names = set()
    for line in page.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            base = name.removesuffix("_total") if kind == "counter" else name
            names |= {base + suffix for suffix in SUFFIXES[kind]}
    return names


def queried_names() -> set[str]:
    queries = [e for p in (MONITORING / "rules").glob("*.yml") for _, e in rule_expressions(p)]
    queries += [
        e for p in (MONITORING / "grafana").glob("*.json") for _, e in dashboard_expressions(p)
    ]
    assert len(queries) > 10
    return set().union(*(metric_names_in(q) for q in queries)) - PROMETHEUS_SERIES


def test_rules_and_dashboard_name_only_metrics_a_running_worker_exports(
    isolated_fleet: Fleet, tmp_path: Path
) -> None:
    nats_url, redis_url = isolated_fleet.nats.url, isolated_fleet.redis.url
    applied = subprocess.run(
        [sys.executable, "-m", "fleet_runtime.cli", "topology", "apply",
         "--file", str(ROOT / "streams.yaml"), "--server", nats_url],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert applied.returncode == 0, applied.stderr
    port = free_port()
    env = {
        **os.environ,
        **isolated_fleet.nats.env(),  # FLEET_NATS_CREDS: the worker connects as itself
        "MARKET_INGEST_NATS_URL": nats_url,
        "MARKET_INGEST_REDIS_URL": redis_url,
        "MARKET_INGEST_STREAMS_FILE": str(ROOT / "streams.yaml"),
        "MARKET_INGEST_HEALTH_PORT": str(port),
        "MARKET_INGEST_LOG_FORMAT": "json",
    }
    log = tmp_path / "market-ingest.log"
    worker = start_worker("market-ingest", env, log)
    try:
        wait_until(
            lambda: scrape(port) is not None,
            timeout=60,
            what="market-ingest /metrics",
            abort=lambda: None if worker.poll() is None else log.read_text()[-2000:],
        )
        page = scrape(port)
        assert page is not None
    finally:
        worker.terminate()
        assert worker.wait(timeout=60) == 0, log.read_text()[-2000:]
    live = names_on_page(page)
    assert "fleet_consumer_num_pending" in live
    assert "market_ingest_ticks_applied_total" in live
    # backup-runner's own metrics are on its page, not market-ingest's: they are checked
    # against its registry (the `fleet.metrics` entry point) instead.
    backup = {n for n in queried_names() if n.startswith("fleet_backup_")}
    assert backup, "the backup rules and panel query backup-runner's metrics"
    assert backup <= exported_metric_names(), sorted(backup - exported_metric_names())
    assert queried_names() - backup <= live, sorted(queried_names() - backup - live)
    assert live <= exported_metric_names(), sorted(live - exported_metric_names())
