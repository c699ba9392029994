"""`fleet replay NAME`: rebuild a worker's store from its streams with the worker's replayer.

A service offers a rebuild by declaring an entry point in the `fleet.replayers` group,
named like its worker, pointing at ``async def rebuild(settings, since, progress)``:
``settings`` are the worker's own settings, ``since`` a ``timedelta`` or None (everything
the stream holds), ``progress`` a callable taking one line of text. ``libs/`` never
imports a service: the replayer is found through the entry point only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from importlib.metadata import entry_points
from typing import Any, cast

import typer

from fleet_runtime.errors import ConfigError
from fleet_runtime.logs import configure_logging
from fleet_runtime.settings import WorkerSettings, load_settings
from fleet_runtime.topology.units import parse_duration
from fleet_runtime.workers import discover_workers, get_worker

REPLAYER_GROUP = "fleet.replayers"

Replayer = Callable[[Any, timedelta | None, Callable[[str], None]], Awaitable[object]]


def find_replayer(name: str) -> Replayer:
    """The rebuild function worker ``name`` declares, or a clear error."""
    get_worker(name)
    for ep in entry_points(group=REPLAYER_GROUP):
        if ep.name == name:
            return cast("Replayer", ep.load())
    able = sorted(ep.name for ep in entry_points(group=REPLAYER_GROUP))
    raise ConfigError(
        f"worker {name!r} has no replayer (workers with one: {', '.join(able) or 'none'})",
        fix=f"declare an entry point `{name}` in the `{REPLAYER_GROUP}` group of the service",
    )


def replay(
    name: str = typer.Argument(..., help="Worker name, e.g. market-ingest."),
    since: str | None = typer.Option(
        None, "--since", help="Only events younger than this (e.g. 24h, 90m); default: all."
    ),
) -> None:
    """Rebuild a worker's store from its streams into fresh keys/tables, then switch over."""
    replayer = find_replayer(name)
    try:
        window = None if since is None else timedelta(seconds=parse_duration(since))
    except ValueError as exc:
        raise ConfigError(f"--since: {exc}", fix="pass a duration such as 24h or 90m") from None
    settings = load_settings(discover_workers()[name].settings_cls)
    if isinstance(settings, WorkerSettings):
        configure_logging(settings.log_level, settings.log_format)
    asyncio.run(_run(replayer, settings, window))


async def _run(replayer: Replayer, settings: Any, since: timedelta | None) -> None:
    await replayer(settings, since, typer.echo)
