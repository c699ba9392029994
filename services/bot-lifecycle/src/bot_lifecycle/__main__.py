"""Entry point: `python -m bot_lifecycle` or the `bot-lifecycle` console script.

`bot-lifecycle` runs the worker; `bot-lifecycle migrate [--dsn DSN] [--check]` applies
the schema migrations as the owner role and exits.
"""

from __future__ import annotations

import sys

from bot_lifecycle.app import WORKER
from fleet_runtime.entry import worker_main


def main() -> None:
    """Run the bot-lifecycle worker until SIGTERM/SIGINT, or the `migrate` subcommand."""
    if sys.argv[1:2] == ["migrate"]:
        from bot_lifecycle.settings import BotLifecycleSettings  # noqa: PLC0415
        from bot_lifecycle.store import MIGRATIONS, SCHEMA  # noqa: PLC0415
        from fleet_pgmigrate import migrate_main  # noqa: PLC0415
        from fleet_runtime.settings import load_settings  # noqa: PLC0415

        settings = load_settings(BotLifecycleSettings)
        owner = settings.owner_dsn.get_secret_value() if settings.owner_dsn else None
        sys.exit(
            migrate_main(
                sys.argv[2:],
                program="bot-lifecycle",
                schema=SCHEMA,
                package=MIGRATIONS,
                default_dsn=owner,
            )
        )
    worker_main(WORKER)


if __name__ == "__main__":
    main()
