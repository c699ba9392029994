"""`fleet backup …`: the backup-runner's own commands, found through its WorkerSpec.

libs/ never imports a service: the worker's spec (entry point ``fleet.workers``) hands
over a command group, which runs with the arguments given after `fleet backup`.
"""

from __future__ import annotations

import typer

from fleet_runtime.errors import UserError
from fleet_runtime.workers import get_worker

WORKER = "backup-runner"


def backup(ctx: typer.Context) -> None:
    """Backups in S3: list | show ID | verify ID (run `fleet backup --help`)."""
    spec = get_worker(WORKER)
    if spec.fleet_commands is None:
        raise UserError(
            f"worker {WORKER!r} has no operator commands in this release",
            fix="install a backup-runner that provides them",
        )
    group = typer.main.get_command(spec.fleet_commands())
    group.main(args=list(ctx.args), prog_name="fleet backup", standalone_mode=True)


CONTEXT = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}
