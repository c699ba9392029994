"""Real backing servers (NATS, PostgreSQL, Redis, MongoDB-wire, S3) on free loopback ports.

``Fleet`` starts them in a temp dir (or a kept dev dir) and stops them; each server can be
stopped, killed, paused and restarted on the same port with the same data. The pytest
plugin (``fleet_testing.pytest_plugin``) exposes them as fixtures.
"""

from fleet_testing.errors import (
    LauncherConfigError,
    LauncherError,
    ServerNotInstalled,
    ServerNotManaged,
    ServerStartError,
)
from fleet_testing.fleet import Fleet
from fleet_testing.probes import free_port, wait_until
from fleet_testing.servers import (
    MongoServer,
    MotoS3Server,
    NatsCluster,
    NatsServer,
    PostgresServer,
    RedisServer,
    S3Server,
    SeaweedS3Server,
    Server,
    ServerKind,
)

__all__ = [
    "Fleet",
    "LauncherConfigError",
    "LauncherError",
    "MongoServer",
    "MotoS3Server",
    "NatsCluster",
    "NatsServer",
    "PostgresServer",
    "RedisServer",
    "S3Server",
    "SeaweedS3Server",
    "Server",
    "ServerKind",
    "ServerNotInstalled",
    "ServerNotManaged",
    "ServerStartError",
    "free_port",
    "wait_until",
]
