"""Errors the launcher raises, each naming the problem and the fix."""

from __future__ import annotations


class LauncherError(Exception):
    """Base class for every error raised by fleet_testing."""


class ServerNotInstalled(LauncherError):
    """A server's program was not found on this machine."""


class ServerStartError(LauncherError):
    """A server process exited or did not become ready before its deadline."""


class ServerNotManaged(LauncherError):
    """A lifecycle call (stop, kill, restart) was made on a server this launcher did not start."""


class LauncherConfigError(LauncherError):
    """A setting (environment variable, argument) has a value the launcher cannot use."""
