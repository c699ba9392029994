"""`fleet deploy`: check the compose file, Kubernetes manifests and monitoring without Docker."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fleet_runtime.deploycheck import DeployLayout, check_deploy
from fleet_runtime.deploycheck.metricnames import exported_metric_names
from fleet_runtime.errors import ConfigError

app = typer.Typer(
    help="Check deploy files against the installed workers and metrics.", no_args_is_help=True
)


@app.command()
def check(
    root: Annotated[
        Path, typer.Option("--root", help="Checkout holding docker-compose.yml and deploy/.")
    ] = Path(),
    kubectl: Annotated[
        bool, typer.Option(help="Render overlays with `kubectl kustomize` when installed.")
    ] = True,
) -> None:
    """Validate docker-compose.yml, the Dockerfile, deploy/k8s and deploy/monitoring.

    Exit 1 when a problem is found (each printed with its fix), 0 otherwise.
    """
    layout = DeployLayout(root)
    if not layout.compose.exists():
        raise ConfigError(
            f"no docker-compose.yml under {root.resolve()}",
            fix="run it from the repository root or pass --root",
        )
    report = check_deploy(layout, use_kubectl=kubectl)
    for note in report.notes:
        typer.echo(f"note: {note}")
    for line in report.messages():
        typer.secho(f"problem: {line}", fg=typer.colors.RED, err=True)
    if not report.ok:
        typer.echo(f"deploy check: {len(report.problems)} problem(s)")
        raise typer.Exit(1)
    typer.echo("deploy check: compose, Dockerfile, Kubernetes overlays and monitoring are sound")


@app.command()
def metrics() -> None:
    """List every metric name the installed workers export (what queries may use)."""
    for name in sorted(exported_metric_names()):
        typer.echo(name)
