"""Checks of the rendered Kubernetes manifests (deploy/k8s overlays) against the workers."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fleet_runtime.deploycheck.compose import worker_of
from fleet_runtime.deploycheck.findings import Report
from fleet_runtime.deploycheck.images import unpinned_reason
from fleet_runtime.deploycheck.kustomize import Resource, render
from fleet_runtime.deploycheck.workerenv import check_worker_env, env_prefix
from fleet_runtime.workers import WorkerSpec

# The Kubernetes release the manifests are validated against (kubernetes-validate schemas).
KUBERNETES_VERSION = "1.35.0"


def _named(resources: list[Resource], kind: str) -> dict[str, Resource]:
    return {r["metadata"]["name"]: r for r in resources if r.get("kind") == kind}


def schema_problems(resources: list[Resource], where: str) -> Report:
    """Validate each resource with kubernetes-validate (strict) when it is installed."""
    report = Report()
    if importlib.util.find_spec("kubernetes_validate") is None:
        report.note(f"{where}: schema validation skipped: kubernetes-validate not installed")
        return report
    import kubernetes_validate  # noqa: PLC0415 - optional: a dev dependency

    for resource in resources:
        name = f"{resource.get('kind')}/{resource.get('metadata', {}).get('name')}"
        try:
            kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            report.problem(
                f"{where}: {name}", f"Kubernetes {KUBERNETES_VERSION}: {path}: {exc.message}"
            )
        except kubernetes_validate.SchemaNotFoundError:
            report.problem(f"{where}: {name}", f"no Kubernetes {KUBERNETES_VERSION} schema")
    return report


def _container_env(
    container: Mapping[str, Any], configmaps: Mapping[str, Resource], secrets: Mapping[str, str]
) -> tuple[dict[str, str], set[str], list[str]]:
    """(variables with values, variables not from a Secret, Secret keys missing)."""
    env: dict[str, str] = {}
    literal: set[str] = set()
    missing: list[str] = []
    for source in container.get("envFrom") or []:
        ref = str((source.get("configMapRef") or {}).get("name"))
        data = (configmaps.get(ref) or {}).get("data") or {}
        env.update({str(k): str(v) for k, v in data.items()})
        literal |= set(data)
    for item in container.get("env") or []:
        key_ref = (item.get("valueFrom") or {}).get("secretKeyRef")
        if key_ref is not None:
            key = str(key_ref.get("key"))
            if key not in secrets:
                missing.append(key)
            env[item["name"]] = secrets.get(key, "")
            literal.discard(item["name"])
        else:
            env[item["name"]] = str(item.get("value", ""))
            literal.add(item["name"])
    return env, literal, missing


def check_overlay(
    directory: Path,
    workers: Mapping[str, WorkerSpec],
    secrets: Mapping[str, str],
    *,
    use_kubectl: bool = True,
) -> Report:
    """Every rule for the resources one overlay renders to."""
    where = f"k8s {directory.name}"
    resources = render(directory, use_kubectl=use_kubectl)
    report = schema_problems(resources, where)
    configmaps = _named(resources, "ConfigMap")
    budgets = [r for r in resources if r.get("kind") == "PodDisruptionBudget"]
    deployed = set()
    for name, deployment in _named(resources, "Deployment").items():
        spec = worker_of(name, workers)
        if spec is not None:
            deployed.add(spec.name)
            report.extend(
                _check_deployment(
                    f"{where}: Deployment {name}", deployment, spec, configmaps, budgets, secrets
                )
            )
    for spec in workers.values():
        if spec.implemented and spec.name not in deployed:
            report.problem(where, f"no Deployment runs the worker {spec.name}")
    report.extend(_check_jobs(where, resources, workers, secrets))
    return report


def _check_deployment(
    where: str,
    deployment: Resource,
    spec: WorkerSpec,
    configmaps: Mapping[str, Resource],
    budgets: list[Resource],
    secrets: Mapping[str, str],
) -> Report:
    report = Report()
    body = deployment.get("spec") or {}
    pod = (body.get("template") or {}).get("spec") or {}
    labels = ((body.get("template") or {}).get("metadata") or {}).get("labels") or {}
    annotations = ((body.get("template") or {}).get("metadata") or {}).get("annotations") or {}
    if not spec.implemented:
        report.problem(where, f"runs {spec.name}, which has no handlers yet and exits at start")
    if int(body.get("replicas", 1)) > 1:
        report.problem(
            where,
            f"replicas {body['replicas']}: processes sharing one durable break its order",
            fix="keep replicas 1; scale out with partitions, one Deployment per partition",
        )
    if (body.get("strategy") or {}).get("type") != "Recreate":
        report.problem(
            where,
            "a rolling update runs the old and new pod on one durable at once",
            fix="use `strategy: {type: Recreate}`",
        )
    containers = pod.get("containers") or []
    if len(containers) != 1:
        report.problem(where, f"has {len(containers)} containers, expected the worker alone")
        return report
    container = containers[0]
    reason = unpinned_reason(str(container.get("image", "")))
    if reason:
        report.problem(where, f"image {container.get('image')} is not pinned: {reason}")
    env, literal, missing = _container_env(container, configmaps, secrets)
    for key in missing:
        report.problem(
            where,
            f"reads Secret key {key}, not in credentials.env.example",
            fix="add the key there (and to the Secret)",
        )
    report.extend(check_worker_env(spec, env, where, is_literal_secret=literal.__contains__))
    prefix = env_prefix(spec.settings_cls)
    port = env.get(f"{prefix}HEALTH_PORT", "")
    ports = {str(p.get("name")): str(p.get("containerPort")) for p in container.get("ports") or []}
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = (container.get(probe) or {}).get("httpGet") or {}
        probe_port = ports.get(str(get.get("port")), str(get.get("port")))
        if get.get("path") != path or probe_port != port:
            report.problem(
                where,
                f"{probe} must GET {path} on port {port or '?'}",
                fix=f"httpGet: {{path: {path}, port: {port or 8080}}}",
            )
    if (
        str(annotations.get("prometheus.io/scrape")) != "true"
        or str(annotations.get("prometheus.io/port")) != port
    ):
        report.problem(
            where,
            "pod is not annotated for scraping on the health port",
            fix=f'prometheus.io/scrape: "true", prometheus.io/port: "{port}"',
        )
    resources = container.get("resources") or {}
    requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
    if not {"cpu", "memory"} <= set(requests) or "memory" not in limits:
        report.problem(where, "needs cpu and memory requests and a memory limit")
    shutdown = float(
        env.get(f"{prefix}SHUTDOWN_TIMEOUT_S")
        or spec.settings_cls.model_fields["shutdown_timeout_s"].get_default()
    )
    grace = float(pod.get("terminationGracePeriodSeconds", 30))
    if grace <= shutdown:
        report.problem(
            where,
            f"terminationGracePeriodSeconds {grace:g} is not longer than the worker's "
            f"shutdown timeout {shutdown:g}s: it would be killed in the middle of a batch",
            fix=f"set it above {shutdown:g}",
        )
    selected = [
        b
        for b in budgets
        if (b["spec"].get("selector") or {}).get("matchLabels", {}).items() <= labels.items()
    ]
    if not selected:
        report.problem(where, "no PodDisruptionBudget selects its pods")
    return report


def _check_jobs(
    where: str,
    resources: list[Resource],
    workers: Mapping[str, WorkerSpec],
    secrets: Mapping[str, str],
) -> Report:
    report = Report()
    jobs = _named(resources, "Job")
    job_env: dict[str, set[str]] = {}
    for name, job in jobs.items():
        pod = job["spec"]["template"]["spec"]
        for container in pod.get("containers") or []:
            reason = unpinned_reason(str(container.get("image", "")))
            if reason:
                report.problem(f"{where}: Job {name}", f"image is not pinned: {reason}")
            _, _, missing = _container_env(container, {}, secrets)
            for key in missing:
                report.problem(
                    f"{where}: Job {name}",
                    f"reads Secret key {key}, not in credentials.env.example",
                )
            command = " ".join(container.get("command") or []) + " ".join(
                container.get("args") or []
            )
            job_env.setdefault(command, set()).update(
                str(i["name"]) for i in container.get("env") or []
            )
    if not any("topology apply" in command for command in job_env):
        report.problem(where, "no Job applies the topology (`fleet topology apply`)")
    for spec in workers.values():
        prefix = env_prefix(spec.settings_cls)
        for variables in job_env.values():
            for variable in variables:
                setting = variable[len(prefix) :].lower()
                if variable.startswith(prefix) and setting not in spec.settings_cls.model_fields:
                    report.problem(where, f"a Job sets {variable}, which {spec.name} lacks")
        if (
            spec.implemented
            and "owner_dsn" in spec.settings_cls.model_fields
            and not any(f"{prefix}OWNER_DSN" in variables for variables in job_env.values())
        ):
            report.problem(where, f"no Job runs the migrations of {spec.name}")
    return report
