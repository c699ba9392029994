"""`fleet security generate`: the fleet's NATS users (nkeys) and their permissions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fleet_runtime.security.generate import generate as generate_users

app = typer.Typer(
    help="Least privilege on NATS: one nkey user per worker, a publisher and an admin.",
    no_args_is_help=True,
)


@app.command()
def generate(
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Directory for the seed files and nats-auth.conf.",
            show_default=True,
        ),
    ] = Path(".fleet/nats-auth"),
    streams: Annotated[
        Path, typer.Option("--streams", "-f", help="The topology file.", show_default=True)
    ] = Path("streams.yaml"),
    worker: Annotated[
        list[str] | None,
        typer.Option("--worker", "-w", help="Only these workers (repeatable); default: all."),
    ] = None,
    rotate: Annotated[
        list[str] | None,
        typer.Option("--rotate", help="Replace this user's key (repeatable); others are kept."),
    ] = None,
    max_partitions: Annotated[
        int,
        typer.Option(
            min=0,
            max=64,
            help="Also grant partition durables <name>-p0.. up to this count, so a stream "
            "can be partitioned without new credentials.",
        ),
    ] = 0,
    tls_map: Annotated[
        bool,
        typer.Option(
            "--tls-map",
            help="Name users by client certificate (subject CN=<user>) for mutual TLS with "
            "verify_and_map, instead of nkeys.",
        ),
    ] = False,
) -> None:
    """Write <user>.nk seeds (mode 0600, never printed) and the server's nats-auth.conf."""
    made = generate_users(
        out,
        streams_file=streams,
        only=worker,
        rotate=rotate or (),
        max_partitions=max_partitions,
        certificates=tls_map,
    )
    kept = "seeds (0600)" if made.seeds else "client certificate subjects"
    typer.echo(f"wrote {made.config} ({len(made.grants)} users); {kept}:")
    for grant in made.grants:
        where = made.seeds.get(grant.user) or f"CN={grant.user}"
        typer.echo(f"  {grant.user:<22} {where}  {grant.summary}")
    typer.echo(
        f'include it from nats-server\'s config (include "{made.config.name}") and give '
        "each worker its seed file in <PREFIX>_NATS_CREDS (docs/security.md)"
    )
