"""Finding the server programs: an override variable, then the venv, then PATH."""

from __future__ import annotations

import os
import shutil
import sysconfig
from collections.abc import Iterable
from pathlib import Path

from fleet_testing.errors import ServerNotInstalled


def venv_scripts_dir() -> Path:
    """The bin/ directory of the running interpreter's environment (where wheels put programs)."""
    return Path(sysconfig.get_path("scripts"))


def find_program(
    name: str,
    *,
    override_var: str,
    install_hint: str,
    extra_dirs: Iterable[Path] = (),
) -> Path:
    """The path of program ``name``.

    Order: ``$override_var`` (a file path), this venv's bin/, ``extra_dirs``, then PATH.
    The venv comes before PATH on purpose: a distribution's older copy (nats-server 2.9
    in /usr/sbin) must not shadow the pinned wheel.
    """
    override = os.environ.get(override_var)
    if override:
        path = Path(override)
        if path.is_file() and os.access(path, os.X_OK):
            return path
        raise ServerNotInstalled(
            f"{override_var}={override!r} is not an executable file: fix the path or unset it"
        )
    for directory in (venv_scripts_dir(), *extra_dirs):
        candidate = directory / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(name)
    if found:
        return Path(found)
    raise ServerNotInstalled(
        f"{name} was not found (looked in {override_var}, {venv_scripts_dir()}, PATH). "
        f"{install_hint}"
    )
