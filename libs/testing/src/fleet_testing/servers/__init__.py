"""One module per server kind; all share ``servers.base.Server``."""

from fleet_testing.servers.base import Server, ServerKind
from fleet_testing.servers.mongo_server import MongoServer
from fleet_testing.servers.nats_cluster import NatsCluster
from fleet_testing.servers.nats_server import NatsServer
from fleet_testing.servers.postgres_server import PostgresServer
from fleet_testing.servers.redis_server import RedisServer
from fleet_testing.servers.s3_server import S3Server

SERVER_CLASSES: dict[ServerKind, type[Server]] = {
    ServerKind.NATS: NatsServer,
    ServerKind.POSTGRES: PostgresServer,
    ServerKind.REDIS: RedisServer,
    ServerKind.MONGO: MongoServer,
    ServerKind.S3: S3Server,
}

__all__ = [
    "SERVER_CLASSES",
    "MongoServer",
    "NatsCluster",
    "NatsServer",
    "PostgresServer",
    "RedisServer",
    "S3Server",
    "Server",
    "ServerKind",
]
