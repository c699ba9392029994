"""`fleet doctor`: check every server, credential, migration and durable a worker needs."""

from __future__ import annotations

import asyncio

import typer

from fleet_runtime.doctor import diagnose, report_lines
from fleet_runtime.workers import discover_workers, get_worker


def doctor(
    worker: list[str] | None = typer.Option(
        None, "--worker", "-w", help="Check only this worker (repeatable); default: all."
    ),
) -> None:
    """Print a ✓/✗ table of each worker's servers, credentials, migrations, topology and
    durables, with the fix for each ✗; exit 1 when any check fails.

    Each worker is checked with its own settings (the same environment it would run with).
    """
    if worker:
        specs = [get_worker(name) for name in worker]
    else:
        specs = [spec for spec in discover_workers().values() if spec.implemented]
    reports = asyncio.run(diagnose(specs))
    for line in report_lines(reports):
        typer.echo(line)
    if not all(r.ok for r in reports):
        raise typer.Exit(1)
