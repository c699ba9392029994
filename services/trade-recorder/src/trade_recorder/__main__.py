"""Entry point: `python -m trade_recorder` or the `trade-recorder` console script."""

from __future__ import annotations

from fleet_runtime.entry import worker_main
from trade_recorder.app import WORKER


def main() -> None:
    """Run the trade-recorder worker until SIGTERM/SIGINT."""
    worker_main(WORKER)


if __name__ == "__main__":
    main()
