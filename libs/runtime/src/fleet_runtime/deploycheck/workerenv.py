"""A deployment's environment for one worker, compared with the worker's settings class.

Each worker's pydantic settings class (``WorkerSpec.settings_cls``, found through the
``fleet.workers`` entry points) is the truth: a variable it does not read is a mistake
(a typo, a setting that was renamed), a value it would refuse is a mistake, and so is a
setting whose default only makes sense on a developer's machine left unset.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from urllib.parse import urlsplit

from pydantic import SecretStr, ValidationError
from pydantic_settings import BaseSettings

from fleet_runtime.deploycheck.findings import Report
from fleet_runtime.workers import WorkerSpec

# Set in every deployment: the defaults bind to loopback, pick a random port or read
# streams.yaml from the working directory, none of which works in a container.
ALWAYS_SET = ("nats_url", "streams_file", "health_host", "health_port")
LOOPBACK = ("127.0.0.1", "localhost", "[::1]")
HEALTH_PORT_DEFAULT = 8080


def env_prefix(cls: type[BaseSettings]) -> str:
    """The settings class's environment prefix, upper case (``TRADE_RECORDER_``)."""
    return str(cls.model_config.get("env_prefix", "")).upper()


def secret_settings(cls: type[BaseSettings]) -> set[str]:
    """Names of the settings that hold credentials (typed ``SecretStr``)."""
    found = set()
    for name, info in cls.model_fields.items():
        annotation = info.annotation
        args = getattr(annotation, "__args__", ())
        if annotation is SecretStr or SecretStr in args:
            found.add(name)
    return found


def required_settings(cls: type[BaseSettings]) -> list[str]:
    """Settings a deployment must set: no default, a loopback default, a default secret."""
    secrets = secret_settings(cls)
    required = []
    for name, info in cls.model_fields.items():
        default = info.get_default()
        shown = default.get_secret_value() if isinstance(default, SecretStr) else default
        if (
            name in ALWAYS_SET
            or info.is_required()
            or any(host in str(shown) for host in LOOPBACK)
            or (name in secrets and default is not None)
        ):
            required.append(name)
    return required


def address_settings(cls: type[BaseSettings]) -> list[str]:
    """Settings that name servers: NATS and the store's URLs, DSNs and endpoints."""
    return [
        name
        for name in cls.model_fields
        if name == "nats_url" or name.endswith(("_dsn", "_url", "_endpoint"))
    ]


def hosts_in(value: str) -> set[str]:
    """Host names in a URL, a comma-separated URL list, or a ``host:port`` endpoint."""
    hosts = set()
    for raw in value.split(","):
        part = raw.strip()
        if not part:
            continue
        parsed = urlsplit(part if "//" in part else f"//{part}")
        if parsed.hostname:
            hosts.add(parsed.hostname)
    return hosts


@contextmanager
def _only_environment(values: Mapping[str, str]) -> Iterator[None]:
    # pydantic-settings reads os.environ when a settings object is built: build it from
    # exactly the deployment's variables, as the worker process would see them.
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _close(name: str, known: list[str]) -> str:
    near = difflib.get_close_matches(name, known, n=1)
    return f"did you mean {near[0]}?" if near else f"known settings: {', '.join(known)}"


def check_worker_env(
    spec: WorkerSpec,
    env: Mapping[str, str],
    where: str,
    *,
    is_literal_secret: Callable[[str], bool],
) -> Report:
    """Compare the variables a deployment gives ``spec`` with its settings class.

    ``is_literal_secret(variable)`` says whether the file writes that variable's value out
    instead of taking it from a secret store (``${VAR}`` in compose, a Secret in Kubernetes).
    """
    report = Report()
    cls = spec.settings_cls
    prefix = env_prefix(cls)
    known = [f"{prefix}{name.upper()}" for name in cls.model_fields]
    secrets = secret_settings(cls)
    for variable in sorted(env):
        if not variable.startswith(prefix):
            report.problem(
                where,
                f"sets {variable}, which {spec.name} does not read (its settings use the "
                f"prefix {prefix})",
                fix=_close(variable, known),
            )
        elif variable[len(prefix) :].lower() not in cls.model_fields:
            report.problem(
                where,
                f"sets {variable}, but {spec.name} has no such setting ({cls.__name__})",
                fix=_close(variable, known),
            )
        elif variable[len(prefix) :].lower() in secrets and is_literal_secret(variable):
            report.problem(
                where,
                f"writes the credential {variable} into the file",
                fix="take it from the environment / a Secret instead of committing it",
            )
    for name in required_settings(cls):
        variable = f"{prefix}{name.upper()}"
        if variable not in env:
            report.problem(
                where,
                f"does not set {variable}: {spec.name} would use its development default",
                fix=f"set {variable} (see `{cls.__name__}`)",
            )
    host = env.get(f"{prefix}HEALTH_HOST", "")
    if host in ("127.0.0.1", "localhost", "::1"):
        report.problem(
            where,
            f"{prefix}HEALTH_HOST={host} hides /metrics and the probes from other hosts",
            fix="bind the health server to 0.0.0.0",
        )
    if env.get(f"{prefix}HEALTH_PORT", "") == "0":
        report.problem(
            where,
            f"{prefix}HEALTH_PORT=0 picks a random port that no probe can know",
            fix=f"set a fixed port (e.g. {HEALTH_PORT_DEFAULT})",
        )
    with _only_environment({k: v for k, v in env.items() if k in known}):
        try:
            cls()
        except ValidationError as exc:
            for err in exc.errors():
                name = ".".join(str(p) for p in err["loc"])
                report.problem(
                    where,
                    f"{prefix}{name.upper()}: {spec.name} would refuse this value: {err['msg']}",
                    fix="give it a value of the setting's type",
                )
    return report
