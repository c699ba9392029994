"""Load a compose file the way `docker compose` reads it: YAML, then ``${VAR}`` interpolation.

Interpolation takes its values from an env file (``.env.example`` in checks), so the
structure seen is the one a deployer gets after copying it to ``.env``. The raw values
are kept too: a credential must come from ``${VAR}``, never be written in the file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fleet_runtime.errors import ConfigError

_VARIABLE = re.compile(r"\$(?:(?P<escaped>\$)|\{(?P<braced>[^}]*)\}|(?P<plain>[A-Za-z_]\w*))")
_BRACED = re.compile(r"^(?P<name>[A-Za-z_]\w*)(?:(?P<op>:?[-?+])(?P<arg>.*))?$", re.S)


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines of an env file (comments and blank lines skipped)."""
    values: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.strip().removeprefix("export ").strip()] = value.strip().strip("'\"")
    return values


def interpolate(text: str, variables: Mapping[str, str], missing: set[str]) -> str:
    """Replace ``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}``…; ``$$`` is ``$``.

    Names that have no value and no default are added to ``missing``.
    """

    def substitute(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        body = match.group("braced") if match.group("braced") is not None else match["plain"]
        parts = _BRACED.match(body)
        if parts is None:
            return match.group(0)
        name, op, arg = parts["name"], parts["op"] or "", parts["arg"] or ""
        value = variables.get(name)
        empty = value is None or (op.startswith(":") and value == "")
        if op.endswith("-"):
            return arg if empty else str(value)
        if op.endswith("+"):
            return "" if empty else arg
        if value is None or (op.endswith("?") and empty):
            missing.add(name)
            return ""
        return value

    return _VARIABLE.sub(substitute, text)


def _walk(node: Any, variables: Mapping[str, str], missing: set[str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, variables, missing)
    if isinstance(node, list):
        return [_walk(item, variables, missing) for item in node]
    if isinstance(node, dict):
        return {key: _walk(value, variables, missing) for key, value in node.items()}
    return node


def environment_of(service: Mapping[str, Any]) -> dict[str, str]:
    """A service's ``environment`` as a mapping, from either its list or its map form."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (str(item).partition("=") for item in env)
        return {key: value for key, _, value in pairs}
    return {str(key): "" if value is None else str(value) for key, value in env.items()}


def depends_on(service: Mapping[str, Any]) -> dict[str, str]:
    """``depends_on`` as service -> condition (the short list form means service_started)."""
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {str(name): "service_started" for name in deps}
    return {
        str(name): str((spec or {}).get("condition", "service_started"))
        for name, spec in deps.items()
    }


@dataclass
class ComposeFile:
    """A compose file after interpolation, with its raw form and unresolved variables."""

    path: Path
    services: dict[str, dict[str, Any]]
    raw_services: dict[str, dict[str, Any]]
    missing_variables: set[str] = field(default_factory=set)

    def aliases(self) -> dict[str, str]:
        """Every host name on the compose network -> the service behind it."""
        names = {name: name for name in self.services}
        for name, service in self.services.items():
            networks = service.get("networks") or {}
            if isinstance(networks, dict):
                for network in networks.values():
                    for alias in (network or {}).get("aliases") or []:
                        names[str(alias)] = name
        return names


def load_compose(path: Path, env_file: Path | None) -> ComposeFile:
    """Read ``path`` and interpolate it with ``env_file``'s values."""
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(
            f"cannot read compose file {path}: {exc}", fix="pass an existing, valid YAML file"
        ) from None
    if not isinstance(document, dict) or not isinstance(document.get("services"), dict):
        raise ConfigError(
            f"{path} has no `services:` mapping", fix="point the check at a docker compose file"
        )
    variables = read_env_file(env_file) if env_file and env_file.exists() else {}
    missing: set[str] = set()
    services = _walk(document["services"], variables, missing)
    return ComposeFile(
        path=path,
        services={str(k): dict(v or {}) for k, v in services.items()},
        raw_services={str(k): dict(v or {}) for k, v in document["services"].items()},
        missing_variables=missing,
    )
