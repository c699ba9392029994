"""Entry point: `python -m trade_recorder` or the `trade-recorder` console script.

`trade-recorder` runs the worker; `trade-recorder migrate [--dsn DSN] [--check]` applies the schema
migrations as the owner role and exits; `--help` and `--version` touch no server.
"""

from __future__ import annotations

from fleet_runtime.entry import worker_main
from trade_recorder.app import WORKER


def main() -> None:
    """Run the trade-recorder command line (see ``fleet_runtime.entry.worker_main``)."""
    worker_main(WORKER)


if __name__ == "__main__":
    main()
