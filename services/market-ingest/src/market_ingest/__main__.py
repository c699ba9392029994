"""Entry point: `python -m market_ingest` or the `market-ingest` console script."""

from __future__ import annotations

from fleet_runtime.entry import worker_main
from market_ingest.app import WORKER


def main() -> None:
    """Run the market-ingest worker until SIGTERM/SIGINT."""
    worker_main(WORKER)


if __name__ == "__main__":
    main()
