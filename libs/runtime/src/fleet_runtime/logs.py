"""structlog configuration: one call at process start, JSON off a terminal, console on one."""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal, cast

import structlog

_configured = False


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is at the moment of the write.

    Loggers are created at import time; binding them to the stderr object of that moment
    would keep a closed stream once a test runner or a daemon swaps ``sys.stderr``.
    """

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


_CHATTY_LIBRARIES = ("nats", "asyncio", "pymongo", "asyncpg", "redis")


class _ToStructlog(logging.Handler):
    """Hands the standard library's records (client libraries') to structlog.

    An exception attached to a record becomes an ``error`` field with its class and
    message: expected network errors carry no traceback into the log.
    """

    def emit(self, record: logging.LogRecord) -> None:
        try:
            fields: dict[str, object] = {"logger": record.name}
            if record.exc_info and record.exc_info[1] is not None:
                exc = record.exc_info[1]
                fields["error"] = f"{type(exc).__name__}: {exc}"
            structlog.get_logger().log(record.levelno, record.getMessage(), **fields)
        except Exception:
            self.handleError(record)


def configure_logging(
    level: str = "INFO", fmt: Literal["auto", "json", "console"] = "auto"
) -> None:
    """Configure structlog and the stdlib root logger once; later calls only change the level."""
    global _configured  # noqa: PLW0603 - process-wide logging is configured exactly once
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    use_console = fmt == "console" or (fmt == "auto" and sys.stderr.isatty())
    renderer: structlog.types.Processor = (
        structlog.dev.ConsoleRenderer() if use_console else structlog.processors.JSONRenderer()
    )
    processors: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        renderer,
    ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
    root = logging.getLogger()
    if not _configured:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        root.addHandler(_ToStructlog())
    root.setLevel(numeric)
    # Client libraries report every failed reconnect; the runtime reports outages itself.
    for name in _CHATTY_LIBRARIES:
        logging.getLogger(name).setLevel(max(numeric, logging.WARNING))
    _configured = True


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    """A structlog logger carrying ``logger=name`` on every line."""
    return cast("structlog.typing.FilteringBoundLogger", _NamedLogger(name))


class _NamedLogger:
    """A logger bound to its name at each call, not when created.

    Module-level loggers are created at import, before ``configure_logging``; one bound
    then would keep structlog's default configuration (console lines on stdout).
    """

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(structlog.get_logger().bind(logger=self._name), attr)
