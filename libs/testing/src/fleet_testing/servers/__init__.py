"""One module per server kind; all share ``servers.base.Server``."""

from fleet_testing.servers.base import Server, ServerKind
from fleet_testing.servers.mongo_server import MongoServer
from fleet_testing.servers.nats_cluster import NatsCluster
from fleet_testing.servers.nats_server import NatsServer
from fleet_testing.servers.postgres_server import PostgresServer
from fleet_testing.servers.redis_server import RedisServer
from fleet_testing.servers.s3_server import MotoS3Server, S3Server, s3_server_class
from fleet_testing.servers.seaweed_server import SeaweedS3Server

SERVER_CLASSES: dict[ServerKind, type[Server]] = {
    ServerKind.NATS: NatsServer,
    ServerKind.POSTGRES: PostgresServer,
    ServerKind.REDIS: RedisServer,
    ServerKind.MONGO: MongoServer,
    ServerKind.S3: S3Server,
}
"""The class of each kind; for S3 a base class: ``server_class`` picks the implementation."""


def server_class(kind: ServerKind) -> type[Server]:
    """The class that runs a server of ``kind`` here (S3: SeaweedFS, or moto without it)."""
    if kind is ServerKind.S3:
        return s3_server_class()
    return SERVER_CLASSES[kind]


__all__ = [
    "SERVER_CLASSES",
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
    "s3_server_class",
    "server_class",
]
