"""Structural checks of docker-compose.yml against the installed workers."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from fleet_runtime.deploycheck.composefile import ComposeFile, depends_on, environment_of
from fleet_runtime.deploycheck.findings import Report
from fleet_runtime.deploycheck.images import unpinned_reason
from fleet_runtime.deploycheck.workerenv import (
    address_settings,
    check_worker_env,
    env_prefix,
    hosts_in,
)
from fleet_runtime.workers import WorkerSpec

_PARTITION = re.compile(r"^(?P<worker>.+)-p\d+$")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s|us)")
_UNIT_S = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 0.000001}
HEALTHY = "service_healthy"
COMPLETED = "service_completed_successfully"


def duration_s(text: str) -> float:
    """A compose duration (``1m30s``, ``35s``) in seconds."""
    return sum(float(n) * _UNIT_S[unit] for n, unit in _DURATION.findall(str(text)))


def _command_text(service: Mapping[str, Any]) -> str:
    parts = []
    for key in ("entrypoint", "command"):
        value = service.get(key)
        parts.extend(value if isinstance(value, list) else [value] if value else [])
    return " ".join(str(p) for p in parts)


def _is_job(service: Mapping[str, Any]) -> bool:
    # A one-shot job says so: `restart: "no"` written out (servers and workers restart).
    return service.get("restart") == "no"


def worker_of(service_name: str, workers: Mapping[str, WorkerSpec]) -> WorkerSpec | None:
    """The worker a service runs: named after it, or ``<worker>-p<k>`` for a partition."""
    if service_name in workers:
        return workers[service_name]
    match = _PARTITION.match(service_name)
    return workers.get(match["worker"]) if match else None


def check_compose(compose: ComposeFile, workers: Mapping[str, WorkerSpec]) -> Report:
    """Every rule of the compose file; each problem names the service and the fix."""
    report = Report()
    where = compose.path.name
    for name in sorted(compose.missing_variables):
        report.problem(
            where,
            f"uses ${{{name}}}, which the env file does not define",
            fix=f"add {name}= to .env.example (and to your .env)",
        )
    jobs = {n for n, s in compose.services.items() if _is_job(s)}
    for name, service in compose.services.items():
        _check_service(report, compose, name, service, jobs, workers)
    present = {worker_of(n, workers) for n in compose.services}
    for spec in workers.values():
        if spec.implemented and spec not in present:
            report.problem(
                where, f"no service runs the worker {spec.name}", fix=f"add a `{spec.name}` service"
            )
    return report


def _check_service(
    report: Report,
    compose: ComposeFile,
    name: str,
    service: dict[str, Any],
    jobs: set[str],
    workers: Mapping[str, WorkerSpec],
) -> None:
    where = f"{compose.path.name}: service {name}"
    image = service.get("image")
    if image:
        reason = unpinned_reason(str(image), built_here="build" in service)
        if reason:
            report.problem(where, f"image {image} is not pinned: {reason}", fix="pin a release")
    elif "build" not in service:
        report.problem(where, "has neither image nor build", fix="name a pinned image")
    for dependency, condition in depends_on(service).items():
        if dependency not in compose.services:
            report.problem(where, f"depends on {dependency}, which is not a service")
            continue
        wanted = COMPLETED if dependency in jobs else HEALTHY
        if condition != wanted:
            report.problem(
                where,
                f"waits for {dependency} with `{condition}`",
                fix=f"use `condition: {wanted}` so it starts only once {dependency} is "
                + ("done" if wanted == COMPLETED else "healthy"),
            )
    health = service.get("healthcheck") or {}
    if name not in jobs and (not health or health.get("disable")):
        report.problem(where, "has no healthcheck", fix="add one that fails until it serves")
    spec = worker_of(name, workers)
    if spec is not None:
        _check_worker(report, compose, where, name, service, jobs, spec)
    elif name in jobs:
        _check_job_env(report, where, service, workers)


def _check_job_env(
    report: Report, where: str, service: Mapping[str, Any], workers: Mapping[str, WorkerSpec]
) -> None:
    env = environment_of(service)
    for spec in workers.values():
        prefix = env_prefix(spec.settings_cls)
        for variable in env:
            setting = variable[len(prefix) :].lower()
            if variable.startswith(prefix) and setting not in spec.settings_cls.model_fields:
                report.problem(
                    where,
                    f"sets {variable}, but {spec.name} has no such setting",
                    fix="use a setting of " + spec.settings_cls.__name__,
                )


def _check_worker(
    report: Report,
    compose: ComposeFile,
    where: str,
    name: str,
    service: Mapping[str, Any],
    jobs: set[str],
    spec: WorkerSpec,
) -> None:
    profiles = service.get("profiles") or []
    if not spec.implemented and not profiles:
        report.problem(
            where,
            f"starts {spec.name}, which has no handlers yet and exits at start",
            fix="put the service in a profile (e.g. `profiles: [not-implemented]`)",
        )
    if spec.implemented and profiles:
        report.note(f"{where}: {spec.name} is implemented but only starts with a profile")
    env = environment_of(service)
    raw_env = environment_of(compose.raw_services.get(name, {}))
    report.extend(
        check_worker_env(
            spec, env, where, is_literal_secret=lambda var: "$" not in raw_env.get(var, "$")
        )
    )
    prefix = env_prefix(spec.settings_cls)
    test = service.get("healthcheck", {}).get("test") or []
    test_text = " ".join(test) if isinstance(test, list) else str(test)
    port = env.get(f"{prefix}HEALTH_PORT", "")
    if "/readyz" not in test_text or (port and f":{port}/" not in test_text):
        report.problem(
            where,
            f"healthcheck does not ask /readyz on the worker's port ({port or 'unset'})",
            fix=f"probe http://127.0.0.1:{port or 8080}/readyz",
        )
    grace = duration_s(service.get("stop_grace_period", "10s"))
    shutdown = float(
        env.get(f"{prefix}SHUTDOWN_TIMEOUT_S")
        or spec.settings_cls.model_fields["shutdown_timeout_s"].get_default()
    )
    if grace <= shutdown:
        report.problem(
            where,
            f"stop_grace_period {grace:g}s is not longer than the worker's shutdown "
            f"timeout {shutdown:g}s: Docker would kill it in the middle of a batch",
            fix=f"set stop_grace_period above {shutdown:g}s",
        )
    deps = depends_on(service)
    hosts = compose.aliases()
    for setting in address_settings(spec.settings_cls):
        value = env.get(f"{prefix}{setting.upper()}", "")
        for host in sorted(hosts_in(value)):
            server = hosts.get(host)
            if server is None:
                report.problem(where, f"{prefix}{setting.upper()} names host {host}, no service")
            elif deps.get(server) != HEALTHY:
                report.problem(
                    where,
                    f"does not wait for {server} ({prefix}{setting.upper()}) to be healthy",
                    fix=f"add `{server}: {{condition: {HEALTHY}}}` to depends_on",
                )
    topology = [j for j in jobs if "topology apply" in _command_text(compose.services[j])]
    if not topology:
        report.problem(where, "no one-shot job applies the topology before it starts")
    needs_migrations = "owner_dsn" in spec.settings_cls.model_fields
    migrations = [j for j in jobs if f"{prefix}OWNER_DSN" in environment_of(compose.services[j])]
    if needs_migrations and not migrations:
        report.problem(
            where,
            f"no one-shot job runs the migrations of {spec.name} (with {prefix}OWNER_DSN)",
            fix=f"add a job running `{spec.name} migrate` and depend on it",
        )
    for job in topology + migrations:
        if deps.get(job) != COMPLETED:
            report.problem(
                where,
                f"does not wait for the job {job} to finish",
                fix=f"add `{job}: {{condition: {COMPLETED}}}` to depends_on",
            )
