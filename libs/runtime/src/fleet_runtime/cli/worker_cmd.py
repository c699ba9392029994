"""`fleet worker`: list the installed workers and run one of them."""

from __future__ import annotations

from pathlib import Path

import typer

from fleet_runtime.entry import worker_main
from fleet_runtime.settings_table import settings_table, update_readme
from fleet_runtime.workers import discover_workers, get_worker

app = typer.Typer(help="List and run the fleet's workers.", no_args_is_help=True)


@app.command("list")
def list_workers() -> None:
    """Print every installed worker, its store, what it consumes and whether it can run yet."""
    for spec in discover_workers().values():
        state = "ready" if spec.implemented else "not implemented yet"
        consumes = ", ".join(spec.consumes)
        typer.echo(f"{spec.name:<22} {spec.store:<11} {consumes:<32} {state}")


@app.command("run")
def run(
    name: str = typer.Argument(..., help="Worker name, e.g. trade-recorder."),
    partition: int | None = typer.Option(
        None, "--partition", min=0, help="Consume only this partition (durable <name>-p<k>)."
    ),
) -> None:
    """Run one worker in the foreground until SIGTERM/SIGINT."""
    worker_main(get_worker(name), partition, argv=())


@app.command("settings")
def settings(
    readme: Path | None = typer.Option(
        None, "--readme", help="Rewrite the table between its markers in this file instead."
    ),
) -> None:
    """Print every worker setting as a Markdown table (variable, fallback, default, what)."""
    workers = discover_workers()
    if readme is None:
        typer.echo(settings_table(workers), nl=False)
        return
    changed = update_readme(readme, workers)
    typer.echo(f"{readme}: {'table updated' if changed else 'table already current'}")
