"""Entry point: `python -m trade_recorder` or the `trade-recorder` console script.

`trade-recorder` runs the worker; `trade-recorder migrate [--dsn DSN] [--check]` applies
the schema migrations as the owner role and exits.
"""

from __future__ import annotations

import sys

from fleet_runtime.entry import worker_main
from trade_recorder.app import WORKER


def main() -> None:
    """Run the trade-recorder worker until SIGTERM/SIGINT, or the `migrate` subcommand."""
    if sys.argv[1:2] == ["migrate"]:
        from fleet_pgmigrate import migrate_main  # noqa: PLC0415
        from fleet_runtime.settings import load_settings  # noqa: PLC0415
        from trade_recorder.settings import TradeRecorderSettings  # noqa: PLC0415
        from trade_recorder.store import MIGRATIONS, SCHEMA  # noqa: PLC0415

        settings = load_settings(TradeRecorderSettings)
        owner = settings.owner_dsn.get_secret_value() if settings.owner_dsn else None
        sys.exit(
            migrate_main(
                sys.argv[2:],
                program="trade-recorder",
                schema=SCHEMA,
                package=MIGRATIONS,
                default_dsn=owner,
            )
        )
    worker_main(WORKER)


if __name__ == "__main__":
    main()
