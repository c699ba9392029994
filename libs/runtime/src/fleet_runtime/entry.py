"""Process entry for one worker: settings, logging, then the worker's run loop."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Awaitable, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import NoReturn

from fleet_runtime.errors import StoreUnavailable, UserError
from fleet_runtime.logs import configure_logging, get_logger
from fleet_runtime.settings import WorkerSettings, load_settings
from fleet_runtime.shared_settings import variables_of
from fleet_runtime.startup import StartupTimedOut, shown_settings
from fleet_runtime.workers import WorkerSpec

EXIT_SERVER_UNREACHABLE = 1
EXIT_USER_ERROR = 2
EXIT_NOT_IMPLEMENTED = 3


def _fail(exc: UserError) -> NoReturn:
    """One line, the cause then the fix, and exit 2."""
    fix = f"; fix: {exc.fix}" if exc.fix else ""
    print(f"error: {exc}{fix}", file=sys.stderr)
    sys.exit(EXIT_USER_ERROR)


def store_settings(spec: WorkerSpec) -> list[str]:
    """The environment variables that say where ``spec``'s store is (its DSNs and URLs)."""
    prefix = str(spec.settings_cls.model_config.get("env_prefix", "")).upper()
    return [
        f"{prefix}{name.upper()}"
        for name in spec.settings_cls.model_fields
        if name != "nats_url" and name.endswith(("_dsn", "_url", "_endpoint"))
    ]


def unreachable_at_start(spec: WorkerSpec, exc: StoreUnavailable) -> UserError:
    """A store that cannot be reached before the first event: a wrong address, most often."""
    where = " or ".join(store_settings(spec)) or "its store setting"
    return UserError(
        f"worker {spec.name!r} cannot reach its store at start-up: {exc}",
        fix=f"start the store (e.g. `./fleetw dev up`) or point {where} at a running server",
    )


async def _stoppable_start(run: Awaitable[None]) -> bool:
    """Await ``run``; SIGTERM or SIGINT before the runtime takes them over stops it cleanly.

    ``serve`` installs its own handlers once the worker is ready (a stop then drains the
    batch in hand); until then a stop cancels the start-up, whose ``finally`` blocks close
    what it opened. False when the start-up was stopped that way.
    """
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    assert main is not None
    stopped = False

    def stop_start_up() -> None:
        nonlocal stopped
        stopped = True
        main.cancel()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop_start_up)
    try:
        await run
    except asyncio.CancelledError:
        if not stopped:
            raise
        return False
    return True


def _version(spec: WorkerSpec) -> str:
    """The installed version of the worker's distribution (named like the worker)."""
    try:
        return version(spec.name)
    except PackageNotFoundError:
        return "unknown"


def _settings_epilog(spec: WorkerSpec) -> str:
    """The environment variables the worker reads, for ``--help``."""
    lines = ["settings (environment variables; a FLEET_ one is the fallback of its setting):"]
    for name, info in spec.settings_cls.model_fields.items():
        variable = variables_of(spec.settings_cls, name)
        lines.append(f"  {variable:<40} {info.description or ''}".rstrip())
    return "\n".join(lines)


def command_line(spec: WorkerSpec) -> argparse.ArgumentParser:
    """The console script's parser: run options, ``--version`` and the worker's subcommands."""
    parser = argparse.ArgumentParser(
        prog=spec.name,
        description=f"Tradefleet worker {spec.name} ({spec.store}: {spec.summary}).\n"
        "Without a subcommand it consumes events until SIGTERM/SIGINT.",
        epilog=_settings_epilog(spec),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"{spec.name} {_version(spec)}")
    parser.add_argument(
        "--partition",
        type=int,
        metavar="K",
        help="consume only partition K (durable <name>-p<K>)",
    )
    if spec.commands:
        sub = parser.add_subparsers(dest="command", metavar="COMMAND")
        for name, command in spec.commands.items():
            # The subcommand parses its own arguments (and its own --help).
            sub.add_parser(name, help=command.summary, add_help=False)
    return parser


def worker_main(
    spec: WorkerSpec, partition: int | None = None, *, argv: Sequence[str] | None = None
) -> None:
    """Run the command line of ``spec``: start the worker, or a subcommand, or print help.

    ``argv`` defaults to the process arguments (the console script and ``python -m``);
    ``fleet worker run`` passes its own, already parsed. ``--help``, ``--version`` and bad
    arguments never read a setting nor touch a server.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in spec.commands:
        sys.exit(spec.commands[args[0]].main(args[1:]))
    if args:
        parsed = command_line(spec).parse_args(args)
        if parsed.partition is not None:
            if parsed.partition < 0:
                command_line(spec).error("--partition: K is 0 or more")
            partition = parsed.partition
    start_worker(spec, partition)


def start_worker(spec: WorkerSpec, partition: int | None = None) -> None:
    """Start ``spec`` in this process; user mistakes exit 2 with a message, never a traceback.

    SIGTERM, like Ctrl-C, stops the worker with status 0 at any point: before the event loop
    runs it raises ``KeyboardInterrupt``, during start-up it cancels the start-up, and once
    the worker is ready it drains and stops (``serve``).
    """
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        settings = load_settings(spec.settings_cls)
    except UserError as exc:
        _fail(exc)
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
    log.info("worker_starting", worker=spec.name, settings=shown_settings(settings))
    try:
        if not asyncio.run(_stoppable_start(spec.run(settings, partition))):
            log.info("worker_stopped_before_ready", worker=spec.name)
    except UserError as exc:
        _fail(exc)
    except StartupTimedOut:
        # Its `server_unreachable` line is logged already: the last line of the output.
        sys.exit(EXIT_SERVER_UNREACHABLE)
    except StoreUnavailable as exc:
        # Once consuming, an outage pauses the worker and never escapes; only start-up does.
        _fail(unreachable_at_start(spec, exc))
    except KeyboardInterrupt:
        log.info("worker_stopped_before_ready", worker=spec.name)
