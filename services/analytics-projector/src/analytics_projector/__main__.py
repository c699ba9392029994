"""Entry point: `python -m analytics_projector` or the `analytics-projector` console script."""

from __future__ import annotations

from analytics_projector.app import WORKER
from fleet_runtime.entry import worker_main


def main() -> None:
    """Run the analytics-projector worker until SIGTERM/SIGINT."""
    worker_main(WORKER)


if __name__ == "__main__":
    main()
