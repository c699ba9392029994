"""The `fleet` operator command line."""

from __future__ import annotations

import sys

import typer

from fleet_runtime.cli import (
    backup_cmd,
    candles_cmd,
    chaos_cmd,
    contract_cmd,
    deploy_cmd,
    dev_cmd,
    dlq_cmd,
    doctor_cmd,
    publish_cmd,
    replay_cmd,
    security_cmd,
    status_cmd,
    topology_cmd,
    worker_cmd,
)
from fleet_runtime.errors import UserError
from fleet_runtime.startup import StartupTimedOut

app = typer.Typer(
    name="fleet",
    help="Operate the Tradefleet workers, streams and dev servers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(topology_cmd.app, name="topology")
app.add_typer(dev_cmd.app, name="dev")
app.add_typer(worker_cmd.app, name="worker")
app.command("replay")(replay_cmd.replay)
app.add_typer(dlq_cmd.app, name="dlq")
app.command("status")(status_cmd.status)
app.add_typer(contract_cmd.app, name="contract")
app.command("publish")(publish_cmd.publish)
app.command("backup", context_settings=backup_cmd.CONTEXT)(backup_cmd.backup)
app.add_typer(deploy_cmd.app, name="deploy")
app.command("doctor")(doctor_cmd.doctor)
app.command("candles")(candles_cmd.candles)
app.command("chaos")(chaos_cmd.chaos)
app.add_typer(security_cmd.app, name="security")


def main() -> None:
    """Run the CLI; a user mistake prints one clear message and exits 2, never a traceback."""
    try:
        app()
    except UserError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        if exc.fix:
            typer.echo(f"fix: {exc.fix}", err=True)
        sys.exit(2)
    except StartupTimedOut as exc:
        # A server that never answered: its `server_unreachable` line says which and where.
        typer.secho(f"error: no answer from {exc}", fg=typer.colors.RED, err=True)
        sys.exit(1)
