"""``python -m fleet_testing up``: run the backing servers until Ctrl-C, printing their URLs."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence

from fleet_testing.errors import LauncherError
from fleet_testing.fleet import Fleet
from fleet_testing.servers import ServerKind


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, start the fleet, wait for SIGINT/SIGTERM, stop it."""
    parser = argparse.ArgumentParser(
        prog="python -m fleet_testing",
        description="Run Tradefleet's backing servers on loopback until interrupted.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start servers and wait for Ctrl-C")
    up.add_argument("--dir", default=".fleet/dev", help="data directory, kept between runs")
    up.add_argument(
        "--only",
        default="",
        help=f"comma-separated kinds to start (default: all of {', '.join(ServerKind)})",
    )
    up.add_argument("--persistent", action="store_true", help="Redis keeps an append-only file")
    args = parser.parse_args(argv)

    kinds = [k.strip() for k in args.only.split(",") if k.strip()]
    stop_requested = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stop_requested.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        fleet = Fleet(args.dir, persistent=args.persistent)
        with fleet:
            fleet.start(*kinds)
            for key, value in sorted(fleet.env().items()):
                print(f"{key}={value}")
            print(f"# written to {fleet.env_file}; Ctrl-C stops", flush=True)
            stop_requested.wait()
    except LauncherError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
