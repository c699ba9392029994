"""Error types the runtime and the CLI raise for problems a user can fix."""

from __future__ import annotations


class UserError(Exception):
    """A mistake in input, config or environment: shown as one message and a fix, no traceback."""

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        super().__init__(message)
        self.fix = fix


class ConfigError(UserError):
    """Invalid settings, streams.yaml content or command-line input."""
