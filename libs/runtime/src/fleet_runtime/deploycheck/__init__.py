"""Deploy checks that need no Docker engine and no cluster (`fleet deploy check`).

They read docker-compose.yml, the Dockerfile, the kustomize overlays under deploy/k8s and
deploy/monitoring, and compare them with what this installation really has: the workers
of the ``fleet.workers`` entry points (their settings classes) and the metrics their
registries export. Each problem names the file, the thing and the fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from fleet_runtime.deploycheck.compose import check_compose
from fleet_runtime.deploycheck.composefile import load_compose, read_env_file
from fleet_runtime.deploycheck.composespec import validate_compose
from fleet_runtime.deploycheck.findings import Finding, Report
from fleet_runtime.deploycheck.images import dockerfile_images, unpinned_reason
from fleet_runtime.deploycheck.kubernetes import KUBERNETES_VERSION, check_overlay
from fleet_runtime.deploycheck.metricnames import exported_metric_names
from fleet_runtime.deploycheck.monitoring import check_monitoring
from fleet_runtime.workers import WorkerSpec, discover_workers

__all__ = [
    "KUBERNETES_VERSION",
    "DeployLayout",
    "Finding",
    "Report",
    "check_compose_files",
    "check_deploy",
    "check_dockerfile",
    "check_kubernetes",
]


@dataclass(frozen=True)
class DeployLayout:
    """Where the deploy files of a checkout are (a test points it at a broken copy)."""

    root: Path

    @property
    def compose(self) -> Path:
        return self.root / "docker-compose.yml"

    @property
    def env_example(self) -> Path:
        return self.root / ".env.example"

    @property
    def dockerfile(self) -> Path:
        return self.root / "Dockerfile"

    @property
    def k8s(self) -> Path:
        return self.root / "deploy" / "k8s"

    @property
    def monitoring(self) -> Path:
        return self.root / "deploy" / "monitoring"


def check_compose_files(layout: DeployLayout, workers: Mapping[str, WorkerSpec]) -> Report:
    """The compose file: the Compose loader's validation, then the structural rules."""
    report = validate_compose(layout.compose, layout.env_example)
    report.extend(check_compose(load_compose(layout.compose, layout.env_example), workers))
    return report


def check_dockerfile(path: Path) -> Report:
    """Every image the Dockerfile pulls is pinned."""
    report = Report()
    if not path.exists():
        report.problem(str(path), "missing", fix="restore the Dockerfile the compose file builds")
        return report
    for image in dockerfile_images(path.read_text()):
        reason = unpinned_reason(image)
        if reason:
            report.problem(path.name, f"image {image} is not pinned: {reason}", fix="pin a release")
    return report


def check_kubernetes(
    layout: DeployLayout, workers: Mapping[str, WorkerSpec], *, use_kubectl: bool = True
) -> Report:
    """Every overlay under deploy/k8s/overlays, rendered and checked."""
    report = Report()
    keys = layout.k8s / "base" / "credentials.env.example"
    if not keys.exists():
        report.problem(str(keys), "missing", fix="list the keys of tradefleet-credentials there")
    secrets = read_env_file(keys) if keys.exists() else {}
    overlays = sorted(p for p in (layout.k8s / "overlays").glob("*") if p.is_dir())
    if not overlays:
        report.problem(str(layout.k8s), "no kustomize overlays", fix="add overlays/<env>/")
    for overlay in overlays:
        report.extend(check_overlay(overlay, workers, secrets, use_kubectl=use_kubectl))
    return report


def check_deploy(layout: DeployLayout, *, use_kubectl: bool = True) -> Report:
    """Every deploy check of ``layout`` against the installed workers and metrics."""
    workers = discover_workers()
    report = check_compose_files(layout, workers)
    report.extend(check_dockerfile(layout.dockerfile))
    report.extend(check_kubernetes(layout, workers, use_kubectl=use_kubectl))
    report.extend(check_monitoring(layout.monitoring, exported_metric_names()))
    return report
