"""Metric names: the ones the workers export, and the ones a PromQL query names.

The exported names come from the registries themselves: the runtime's ``WorkerMetrics``
and each service's own metrics class, declared in the ``fleet.metrics`` entry-point group
(a callable taking ``registry=``), so ``libs/`` never imports a service.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from importlib.metadata import entry_points

from prometheus_client import CollectorRegistry

from fleet_runtime.metrics import WorkerMetrics

METRICS_ENTRY_POINT_GROUP = "fleet.metrics"

# Series Prometheus writes itself for every scrape target.
PROMETHEUS_SERIES = frozenset(
    {
        "up",
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "scrape_samples_post_metric_relabeling",
        "scrape_series_added",
        "ALERTS",
        "ALERTS_FOR_STATE",
    }
)
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
}
_STRINGS = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_TEMPLATE_VARS = re.compile(r"\$\{[^}]*\}|\$\w+")
_IDENTIFIER = re.compile(r"(?<![\w:.])([A-Za-z_:][\w:]*)(\s*\()?")
_KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool"}
    | {"and", "or", "unless", "inf", "nan", "Inf", "NaN", "atan2", "start", "end"}
)


def registry_names(registry: CollectorRegistry) -> set[str]:
    """Every sample name a registry can export (counters as ``_total``, histograms…)."""
    names = set()
    for family in registry.collect():
        for suffix in _SUFFIXES.get(family.type, ("",)):
            names.add(family.name + suffix)
    return names


def service_metric_registries() -> Iterable[tuple[str, CollectorRegistry]]:
    """(entry point name, registry) of every service metrics class installed."""
    for ep in entry_points(group=METRICS_ENTRY_POINT_GROUP):
        registry = CollectorRegistry()
        ep.load()(registry=registry)
        yield ep.name, registry


def exported_metric_names() -> set[str]:
    """Every metric name a worker of this installation exports on /metrics."""
    names = registry_names(WorkerMetrics(CollectorRegistry()).registry)
    for _, registry in service_metric_registries():
        names |= registry_names(registry)
    return names


def metric_names_in(query: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, labels and keywords left out).

    Grafana template variables (``$worker``, ``${__rate_interval}``) are removed first.
    """
    text = _TEMPLATE_VARS.sub("", query)
    text = _STRINGS.sub('""', text)
    text = _MATCHERS.sub("", text)
    text = _RANGES.sub("", text)
    text = _GROUPING.sub("", text)
    found = set()
    for match in _IDENTIFIER.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name in _KEYWORDS:
            continue
        found.add(name)
    return found
