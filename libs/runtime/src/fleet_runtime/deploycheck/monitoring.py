"""Checks of deploy/monitoring: alert rules and the dashboard name only exported metrics.

Rule files under ``rules/`` are loaded by Prometheus and must pass; files under
``pending/`` wait for a metric no worker exports yet and are only reported. When
``promtool`` is on PATH its own checks and the rule unit tests under ``tests/`` run too.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from fleet_runtime.deploycheck.findings import Report
from fleet_runtime.deploycheck.metricnames import PROMETHEUS_SERIES, metric_names_in

_KUBERNETES_SD_MISSING = "field kubernetes_sd_configs not found"
_LABEL_VALUES = re.compile(r"^\s*label_values\((?P<selector>.*),\s*\w+\s*\)\s*$", re.S)


def rule_expressions(path: Path) -> Iterator[tuple[str, str]]:
    """(rule name, expression) of every alerting or recording rule in a rule file."""
    document = yaml.safe_load(path.read_text()) or {}
    for group in document.get("groups") or []:
        for rule in group.get("rules") or []:
            name = rule.get("alert") or rule.get("record") or "?"
            yield str(name), str(rule.get("expr", ""))


def dashboard_expressions(path: Path) -> Iterator[tuple[str, str]]:
    """(panel title, query) of every panel target in a Grafana dashboard, rows included."""
    document = json.loads(path.read_text())

    def panels(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
        for panel in node.get("panels") or []:
            yield panel
            yield from panels(panel)

    for panel in panels(document):
        for target in panel.get("targets") or []:
            if "expr" in target:
                yield str(panel.get("title", "?")), str(target["expr"])
    for variable in (document.get("templating") or {}).get("list") or []:
        query = variable.get("query")
        text = str(query.get("query", "")) if isinstance(query, dict) else str(query or "")
        # label_values(selector, label): only the selector is PromQL.
        match = _LABEL_VALUES.match(text)
        if variable.get("type") == "query" and text:
            yield f"variable ${variable.get('name')}", match["selector"] if match else text


def _unknown(expr: str, known: set[str]) -> list[str]:
    return sorted(metric_names_in(expr) - known - PROMETHEUS_SERIES)


def _recorded(files: list[Path]) -> set[str]:
    names = set()
    for path in files:
        for group in (yaml.safe_load(path.read_text()) or {}).get("groups") or []:
            names |= {str(r["record"]) for r in group.get("rules") or [] if "record" in r}
    return names


def _unreadable(path: Path) -> str | None:
    try:
        if path.suffix == ".json":
            json.loads(path.read_text())
        else:
            yaml.safe_load(path.read_text())
    except (OSError, ValueError, yaml.YAMLError) as exc:
        return " ".join(str(exc).split())
    return None


def check_monitoring(directory: Path, exported: set[str]) -> Report:
    """Every query in ``directory`` against ``exported``; promtool checks when installed."""
    report = Report()
    rule_files = sorted((directory / "rules").glob("*.yml"))
    dashboards = sorted((directory / "grafana").glob("*.json"))
    if not rule_files:
        report.problem(str(directory / "rules"), "no alert rule files", fix="add rules/*.yml")
    unreadable = [p for p in [*rule_files, *dashboards] if _unreadable(p)]
    for path in unreadable:
        report.problem(str(path), f"cannot be parsed: {_unreadable(path)}")
    rule_files = [p for p in rule_files if p not in unreadable]
    dashboards = [p for p in dashboards if p not in unreadable]
    known = exported | _recorded(rule_files)
    for path in rule_files:
        for name, expr in rule_expressions(path):
            for metric in _unknown(expr, known):
                report.problem(
                    f"{path.name}: rule {name}",
                    f"uses metric {metric}, which no worker exports",
                    fix="use a metric from `fleet deploy metrics`",
                )
    for path in sorted((directory / "pending").glob("*.yml")):
        for name, expr in rule_expressions(path):
            missing = _unknown(expr, known)
            if missing:
                report.note(
                    f"{path.name}: rule {name} is not loaded yet: it needs "
                    f"{', '.join(missing)}, which no worker exports"
                )
    for path in dashboards:
        for title, expr in dashboard_expressions(path):
            for metric in _unknown(expr, known):
                report.problem(
                    f"{path.name}: panel {title!r}",
                    f"queries metric {metric}, which no worker exports",
                    fix="use a metric from `fleet deploy metrics`",
                )
    report.extend(promtool_checks(directory, rule_files))
    return report


def promtool_checks(directory: Path, rule_files: list[Path]) -> Report:
    """`promtool check config`, `check rules` and `test rules`, when promtool is installed."""
    report = Report()
    promtool = shutil.which("promtool")
    if promtool is None:
        report.note(
            "promtool not on PATH: `promtool check rules` and the rule unit tests were "
            "skipped (Debian/Ubuntu: apt-get install prometheus)"
        )
        return report
    tests = sorted((directory / "tests").glob("*.yml"))
    runs = [["check", "config", "--syntax-only", str(c)] for c in directory.glob("prometheus*.yml")]
    if rule_files:
        runs.append(["check", "rules", *map(str, rule_files)])
    if tests:
        runs.append(["test", "rules", *map(str, tests)])
    for args in runs:
        result = subprocess.run(
            [promtool, *args], capture_output=True, text=True, check=False, timeout=120
        )
        output = " ".join((result.stdout + result.stderr).split())
        if result.returncode == 0:
            continue
        if _KUBERNETES_SD_MISSING in output:
            report.note(
                f"{Path(args[-1]).name}: not checked: this promtool is built without "
                "Kubernetes service discovery (Debian's package is)"
            )
            continue
        report.problem(f"promtool {args[0]} {args[1]} {Path(args[-1]).name}", output[:2000])
    return report
