"""``FLEET_TEST_BACKEND=docker``: the shared servers run in containers via testcontainers.

Each container is then used exactly like an external server (``FLEET_*`` URL): the
launcher only connects to it. Where no Docker engine answers, the launcher stops with a
message naming the fix instead of falling back silently.
"""

from __future__ import annotations

import atexit
from collections.abc import Callable
from typing import Any

from fleet_testing.errors import LauncherConfigError
from fleet_testing.servers import ServerKind

BACKEND_VAR = "FLEET_TEST_BACKEND"

# Images and how to reach them: (image, container port, URL template, command, env).
_IMAGES: dict[ServerKind, tuple[str, int, str, list[str] | None, dict[str, str]]] = {
    ServerKind.NATS: ("nats:2.11", 4222, "nats://{host}:{port}", ["-js"], {}),
    ServerKind.POSTGRES: (
        "postgres:16",
        5432,
        "postgresql://postgres:postgres@{host}:{port}/postgres",
        None,
        {"POSTGRES_PASSWORD": "postgres"},
    ),
    ServerKind.REDIS: ("redis:7", 6379, "redis://{host}:{port}/0", None, {}),
    ServerKind.MONGO: (
        "mongo:7",
        27017,
        "mongodb://{host}:{port}/?directConnection=true",
        None,
        {},
    ),
    ServerKind.S3: (
        "minio/minio:latest",
        9000,
        "http://{host}:{port}",
        ["server", "/data"],
        {"MINIO_ROOT_USER": "minioadmin", "MINIO_ROOT_PASSWORD": "minioadmin"},
    ),
}


def _docker_client() -> Any:
    try:
        import docker  # noqa: PLC0415 - optional: installed with fleet-testing[docker]
    except ImportError:
        raise LauncherConfigError(
            f"{BACKEND_VAR}=docker needs the testcontainers and docker packages. "
            "Install them with `uv sync --extra docker` (fleet-testing[docker]), "
            f"or unset {BACKEND_VAR} to launch local servers."
        ) from None
    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:  # any failure here means no usable engine
        raise LauncherConfigError(
            f"{BACKEND_VAR}=docker but no Docker engine answers ({type(exc).__name__}: "
            f"{exc}). Start Docker (or set DOCKER_HOST), or unset {BACKEND_VAR} to "
            "launch local servers."
        ) from None
    return client


def start_container(kind: ServerKind, wait_ready: Callable[[str], object]) -> str:
    """Start a container for ``kind`` and return its URL once ``wait_ready(url)`` passes."""
    _docker_client()
    from testcontainers.core.container import DockerContainer  # noqa: PLC0415

    image, port, template, command, env = _IMAGES[kind]
    container = DockerContainer(image).with_exposed_ports(port)
    for key, value in env.items():
        container = container.with_env(key, value)
    if command:
        container = container.with_command(" ".join(command))
    container.start()
    atexit.register(container.stop)
    url = template.format(
        host=container.get_container_host_ip(), port=container.get_exposed_port(port)
    )
    wait_ready(url)
    return url
