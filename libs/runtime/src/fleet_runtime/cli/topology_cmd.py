"""`fleet topology`: validate, plan, apply and check drift of streams.yaml."""

from __future__ import annotations

import typer

app = typer.Typer(help="Declare JetStream streams and consumers from streams.yaml.", no_args_is_help=True)
