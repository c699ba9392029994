"""Entry point: `python -m bot_lifecycle` or the `bot-lifecycle` console script."""

from __future__ import annotations

from bot_lifecycle.app import WORKER
from fleet_runtime.entry import worker_main


def main() -> None:
    """Run the bot-lifecycle worker until SIGTERM/SIGINT."""
    worker_main(WORKER)


if __name__ == "__main__":
    main()
