"""`fleet contract`: write docs/asyncapi.yaml from the registry, or check the committed one."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import yaml

from fleet_runtime.contract import (
    DEFAULT_PATH,
    Incompatibility,
    build_document,
    current_inputs,
    differences,
    incompatibilities,
    read,
    render,
)
from fleet_runtime.contract.compat import FIX
from fleet_runtime.contract.messages import Doc

app = typer.Typer(
    help="The AsyncAPI contract of the fleet's events (docs/asyncapi.yaml).", no_args_is_help=True
)

DocOption = Annotated[
    Path, typer.Option("--doc", "-o", help="The AsyncAPI document.", show_default=True)
]
StreamsOption = Annotated[
    Path, typer.Option("--streams", "-f", help="The topology file.", show_default=True)
]
_SHOWN = 8


def _say_incompatible(found: list[Incompatibility], against: Path) -> None:
    typer.secho(
        f"incompatible with {against}: {len(found)} change{'s' if len(found) != 1 else ''} "
        "would break readers of the previous version",
        fg=typer.colors.RED,
        err=True,
    )
    for item in found:
        typer.echo(f"  {item}", err=True)
    typer.echo(f"fix: {FIX}", err=True)


def _summary(doc: Doc) -> str:
    events = sum(1 for m in doc["components"]["messages"].values() if "x-fleet-event-type" in m)
    return f"{events} event types, {len(doc['x-fleet-workers'])} workers"


@app.command()
def generate(
    doc: DocOption = DEFAULT_PATH,
    streams: StreamsOption = Path("streams.yaml"),
    allow_breaking: Annotated[
        bool,
        typer.Option(
            "--allow-breaking",
            help="Write even when a change breaks readers of the current file (only for "
            "an event type no one has published yet).",
        ),
    ] = False,
) -> None:
    """Write the AsyncAPI document; refuse a change that breaks readers of the current file."""
    new = build_document(current_inputs(streams))
    if doc.exists() and not allow_breaking:
        _, old = read(doc)
        found = incompatibilities(old, new)
        if found:
            _say_incompatible(found, doc)
            raise typer.Exit(1)
    text = render(new)
    if doc.exists() and doc.read_text(encoding="utf-8") == text:
        typer.echo(f"{doc}: unchanged ({_summary(new)})")
        return
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {doc} ({_summary(new)})")


@app.command()
def check(
    doc: DocOption = DEFAULT_PATH,
    streams: StreamsOption = Path("streams.yaml"),
    baseline: Annotated[
        Path | None,
        typer.Option(
            help="Check compatibility against this earlier document (e.g. main's copy) "
            "instead of the committed one.",
        ),
    ] = None,
) -> None:
    """Exit 1 when a change breaks readers of the committed document, or when it is stale."""
    new = build_document(current_inputs(streams))
    text, committed = read(doc)
    against = baseline or doc
    previous = committed if baseline is None else read(baseline)[1]
    found = incompatibilities(previous, new)
    if found:
        _say_incompatible(found, against)
        raise typer.Exit(1)
    if text != render(new):
        # Compare as data so the message names what changed, not a line number.
        paths = list(differences(committed, yaml.safe_load(render(new))))
        shown = ", ".join(paths[:_SHOWN]) + (
            f" and {len(paths) - _SHOWN} more" if len(paths) > _SHOWN else ""
        )
        typer.secho(
            f"{doc} is out of date with the event registry and streams.yaml"
            + (
                f": {len(paths)} difference{'s' if len(paths) != 1 else ''}: {shown}"
                if paths
                else " (formatting only)"
            ),
            fg=typer.colors.RED,
            err=True,
        )
        typer.echo(f"fix: run `fleet contract generate` and commit {doc}", err=True)
        raise typer.Exit(1)
    typer.echo(f"{doc}: up to date and compatible ({_summary(new)})")
