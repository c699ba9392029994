"""Entry point: `python -m bot_lifecycle` or the `bot-lifecycle` console script.

`bot-lifecycle` runs the worker; `bot-lifecycle migrate [--dsn DSN] [--check]` applies the schema
migrations as the owner role and exits; `--help` and `--version` touch no server.
"""

from __future__ import annotations

from bot_lifecycle.app import WORKER
from fleet_runtime.entry import worker_main


def main() -> None:
    """Run the bot-lifecycle command line (see ``fleet_runtime.entry.worker_main``)."""
    worker_main(WORKER)


if __name__ == "__main__":
    main()
