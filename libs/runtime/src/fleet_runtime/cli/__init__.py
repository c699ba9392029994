"""The `fleet` operator command line.

The command modules are imported when the command line is built, not with this package:
`fleet candles` (run by scripts and backtests, often one range at a time) builds a command
line of that command alone and starts without importing the other commands (about 3 s and
70 MB on a busy 2-core machine).
"""

from __future__ import annotations

import sys
from typing import Any

import typer

from fleet_runtime.errors import UserError

_OPTIONS: dict[str, Any] = {
    "name": "fleet",
    "help": "Operate the Tradefleet workers, streams and dev servers.",
    "no_args_is_help": True,
    "pretty_exceptions_enable": False,
    "add_completion": False,
}


def build_app() -> typer.Typer:
    """The whole command line."""
    from fleet_runtime.cli import (  # noqa: PLC0415 - see the module docstring
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

    app = typer.Typer(**_OPTIONS)
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
    return app


def _candles_app() -> typer.Typer:
    """The command line of `fleet candles` alone."""
    from fleet_runtime.cli import candles_cmd  # noqa: PLC0415 - see the module docstring

    app = typer.Typer(**_OPTIONS)
    app.callback()(_group)  # a group, so that `candles` stays a subcommand
    app.command("candles")(candles_cmd.candles)
    return app


def _group() -> None:
    """Operate the Tradefleet workers, streams and dev servers."""


_built: list[typer.Typer] = []


def __getattr__(name: str) -> Any:
    """``app``: the whole command line, built on first use."""
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if not _built:
        _built.append(build_app())
    return _built[0]


def main() -> None:
    """Run the CLI; a user mistake prints one clear message and exits 2, never a traceback."""
    if sys.argv[1:2] == ["candles"]:
        _run(_candles_app())
        return
    from fleet_runtime.startup import StartupTimedOut  # noqa: PLC0415

    try:
        _run(__getattr__("app"))
    except StartupTimedOut as exc:
        # A server that never answered: its `server_unreachable` line says which and where.
        typer.secho(f"error: no answer from {exc}", fg=typer.colors.RED, err=True)
        sys.exit(1)


def _run(app: typer.Typer) -> None:
    try:
        app()
    except UserError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        if exc.fix:
            typer.echo(f"fix: {exc.fix}", err=True)
        sys.exit(2)
