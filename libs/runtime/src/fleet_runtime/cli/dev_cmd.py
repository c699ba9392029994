"""`fleet dev`: embedded servers, all workers and a market simulator on one machine."""

from __future__ import annotations

import typer

app = typer.Typer(help="Run the whole fleet locally on embedded servers.", no_args_is_help=True)
