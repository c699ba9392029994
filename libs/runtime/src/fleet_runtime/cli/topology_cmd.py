"""`fleet topology`: validate, plan, apply and check drift of streams.yaml."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer

from fleet_runtime.topology import Topology, load_topology, open_jetstream
from fleet_runtime.topology import apply as apply_topology
from fleet_runtime.topology import plan as plan_topology
from fleet_runtime.topology.connection import DEFAULT_URL, URL_ENV
from fleet_runtime.topology.plan import Action, Plan
from fleet_runtime.topology.report import drift_lines, plan_lines, recreate_warnings

app = typer.Typer(
    help="Declare JetStream streams and consumers from streams.yaml.", no_args_is_help=True
)

FileOption = Annotated[
    Path, typer.Option("--file", "-f", help="The topology file.", show_default=True)
]
ServerOption = Annotated[
    str,
    typer.Option("--server", "-s", envvar=URL_ENV, help="NATS server URL.", show_default=True),
]
_FILE = Path("streams.yaml")


def _say(lines: list[str]) -> None:
    for line in lines:
        typer.echo(line)


def _summary(topology: Topology) -> str:
    durables = topology.durables()
    return (
        f"{len(topology.streams)} streams, {len(topology.consumers)} consumer declarations "
        f"({len(durables)} durables) for {len(topology.workers())} workers"
    )


@app.command()
def validate(file: FileOption = _FILE) -> None:
    """Check the file without a server; list every problem with its line:col and a fix."""
    topology = load_topology(file)
    typer.echo(f"{file}: valid: {_summary(topology)}")


@app.command()
def schema() -> None:
    """Print the JSON Schema of streams.yaml (for editors and CI)."""
    typer.echo(json.dumps(Topology.model_json_schema(), indent=2))


async def _plan(server: str, topology: Topology, prune: bool) -> Plan:
    async with open_jetstream(server) as js:
        return await plan_topology(js, topology, prune=prune)


@app.command()
def plan(
    file: FileOption = _FILE,
    server: ServerOption = DEFAULT_URL,
    prune: Annotated[bool, typer.Option(help="Show extras as deletions.")] = False,
) -> None:
    """Show what apply would do: create / update / unchanged / requires-recreate, field by field."""
    topology = load_topology(file)
    _say(plan_lines(asyncio.run(_plan(server, topology, prune))))


async def _apply(server: str, topology: Topology, allow_recreate: bool, prune: bool) -> Plan:
    async with open_jetstream(server) as js:
        if allow_recreate or prune:
            preview = await plan_topology(js, topology, prune=prune)
            for warning in recreate_warnings(preview):
                typer.secho(warning, fg=typer.colors.YELLOW, err=True)
        return await apply_topology(js, topology, allow_recreate=allow_recreate, prune=prune)


@app.command()
def apply(
    file: FileOption = _FILE,
    server: ServerOption = DEFAULT_URL,
    allow_recreate: Annotated[
        bool,
        typer.Option(
            "--allow-recreate",
            help="Delete and recreate what cannot change in place. DESTROYS the stream's "
            "messages or the consumer's position.",
        ),
    ] = False,
    prune: Annotated[
        bool,
        typer.Option("--prune", help="Delete streams and durables that are not in the file."),
    ] = False,
) -> None:
    """Create and update streams and consumers to match the file (idempotent)."""
    topology = load_topology(file)
    done = asyncio.run(_apply(server, topology, allow_recreate, prune))
    _say(plan_lines(done))
    changed = len(done.of(Action.CREATE, Action.UPDATE, Action.RECREATE, Action.DELETE))
    typer.echo(f"applied: {changed} change{'s' if changed != 1 else ''}")


@app.command()
def drift(file: FileOption = _FILE, server: ServerOption = DEFAULT_URL) -> None:
    """Compare the server with the file; exit 1 on any difference (for CI and cron)."""
    topology = load_topology(file)
    result = asyncio.run(_plan(server, topology, False))
    _say(drift_lines(result))
    if result.differs:
        raise typer.Exit(1)
