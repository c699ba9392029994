"""Entry point: `python -m backup_runner` or the `backup-runner` console script."""

from __future__ import annotations

from backup_runner.app import WORKER
from fleet_runtime.entry import worker_main


def main() -> None:
    """Run the backup-runner worker until SIGTERM/SIGINT."""
    worker_main(WORKER)


if __name__ == "__main__":
    main()
