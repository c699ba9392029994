"""`fleet dev`: embedded servers, all workers and a market simulator on one machine."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from fleet_runtime.dev import DevOptions, run_dev

app = typer.Typer(help="Run the whole fleet locally on embedded servers.", no_args_is_help=True)


@app.command("up")
def up(
    data_dir: Path = typer.Option(
        Path(".fleet/dev"), "--dir", help="Where server data and worker logs are kept."
    ),
    streams_file: Path = typer.Option(Path("streams.yaml"), "--file", "-f"),
    rate: int = typer.Option(200, min=1, max=100_000, help="Simulated events per second."),
    simulate: bool = typer.Option(True, "--simulate/--no-simulate", help="Run the simulator."),
    duration: float | None = typer.Option(
        None,
        min=1,
        help="Stop this many seconds after the workers are ready (default: run until Ctrl-C).",
    ),
    status_every: float = typer.Option(5.0, min=0.5, help="Seconds between progress lines."),
) -> None:
    """Start servers, apply streams.yaml, start every ready worker, publish simulated traffic."""
    opts = DevOptions(
        data_dir=data_dir.absolute(),
        streams_file=streams_file.absolute(),
        rate=rate,
        simulate=simulate,
        duration_s=duration,
        status_every_s=status_every,
    )
    asyncio.run(run_dev(opts))
