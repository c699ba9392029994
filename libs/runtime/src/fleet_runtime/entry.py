"""Process entry for one worker: settings, logging, then the worker's run loop."""

from __future__ import annotations

import asyncio
import sys

from fleet_runtime.errors import UserError
from fleet_runtime.logs import configure_logging, get_logger
from fleet_runtime.settings import WorkerSettings, load_settings
from fleet_runtime.workers import WorkerSpec

EXIT_USER_ERROR = 2
EXIT_NOT_IMPLEMENTED = 3


def worker_main(spec: WorkerSpec, partition: int | None = None) -> None:
    """Start ``spec`` in this process; user mistakes exit 2 with a message, never a traceback."""
    try:
        settings = load_settings(spec.settings_cls)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if exc.fix:
            print(f"fix: {exc.fix}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    if isinstance(settings, WorkerSettings):
        configure_logging(settings.log_level, settings.log_format)
    else:
        configure_logging()
    log = get_logger(spec.name)
    if spec.run is None:
        print(
            f"error: worker {spec.name!r} has no handlers yet: it cannot consume events in this "
            "release",
            file=sys.stderr,
        )
        sys.exit(EXIT_NOT_IMPLEMENTED)
    log.info("worker_starting", worker=spec.name, settings=repr(settings))
    try:
        asyncio.run(spec.run(settings, partition))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if exc.fix:
            print(f"fix: {exc.fix}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        pass
