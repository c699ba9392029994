"""`fleet chaos`: the fault suite (development tooling, loaded only when it runs)."""

from __future__ import annotations

import importlib
from pathlib import Path

import typer

from fleet_runtime.errors import UserError


def chaos(
    quick: bool = typer.Option(
        False, "--quick", help="A short run that still injects every fault once (~3 min)."
    ),
    scenario: list[str] = typer.Option(
        [], "--scenario", "-s", help="Run only this scenario (repeatable)."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Write the table to this markdown file (docs/reliability.md)."
    ),
    repo: Path = typer.Option(Path("."), "--repo", help="The checkout whose streams.yaml runs."),
) -> None:
    """Run every worker on real servers, inject faults under load, reconcile every store.

    Exits 1 when a scenario lost, doubled or wrongly dead-lettered anything.
    """
    try:
        # Development tooling from fleet-testing: never imported by a worker.
        chaos_suite = importlib.import_module("fleet_testing.chaos")
    except ImportError:
        raise UserError(
            "the fleet-testing package (fault suite) is not installed",
            fix="run `./fleetw chaos` from a checkout (it installs the whole workspace)",
        ) from None
    streams = repo / "streams.yaml"
    if not streams.is_file():
        raise UserError(f"no streams.yaml in {repo.absolute()}", fix="run it from the checkout")
    parts = ["./fleetw chaos"]
    parts += ["--quick"] if quick else []
    parts += [f"--scenario {name}" for name in scenario]
    parts += [f"--out {out}"] if out is not None else []
    try:
        results = chaos_suite.run(
            repo=repo.absolute(),
            quick=quick,
            names=scenario,
            out=out,
            command=" ".join(parts),
        )
    except ValueError as exc:
        raise UserError(str(exc), fix="pick scenarios from the list above") from None
    if not all(r.exact for r in results):
        typer.secho("chaos: a scenario is NOT EXACT (see above)", fg=typer.colors.RED, err=True)
        raise typer.Exit(1)
