"""Where the tiers are, and opening them: for ``fleet candles`` and the Redis refill.

A tier's driver is imported only when that tier is opened: redis-py and pymongo together
are ~30 MB of a process's memory that an export of the cold tier alone does not need.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fleet_history.cold import ParquetCandles, s3_filesystem
from fleet_history.hot import RedisCandles
from fleet_history.model import Tier
from fleet_history.warm import MongoCandles

if TYPE_CHECKING:
    from pymongo import AsyncMongoClient
    from redis.asyncio import Redis

DEFAULT_DATABASE = "tradefleet_analytics"
"""analytics-projector's database, which holds ``price_history``."""
DEFAULT_BUCKET = "tradefleet-backups"
"""backup-runner's default bucket, which holds ``history/candles/``."""


@dataclass(frozen=True)
class Sources:
    """Where the three tiers are; a tier whose address is None is left out."""

    redis_url: str | None
    mongo_url: str | None
    s3_endpoint: str | None
    mongo_database: str = DEFAULT_DATABASE
    s3_access_key: str = "minioadmin"
    s3_secret_key: str = "minioadmin"  # noqa: S105 - the local servers' default, as backup-runner's
    s3_region: str = "us-east-1"
    s3_bucket: str = DEFAULT_BUCKET

    @classmethod
    def from_env(cls, env: Mapping[str, str], **chosen: Any) -> Sources:
        """The fleet-wide variables (``FLEET_REDIS_URL``, ``FLEET_MONGO_URL``,
        ``FLEET_S3_*``, ``FLEET_HISTORY_BUCKET``); ``chosen`` values that are not None win."""
        values: dict[str, Any] = {
            "redis_url": env.get("FLEET_REDIS_URL"),
            "mongo_url": env.get("FLEET_MONGO_URL"),
            "s3_endpoint": env.get("FLEET_S3_ENDPOINT"),
            "mongo_database": env.get("FLEET_HISTORY_DATABASE") or DEFAULT_DATABASE,
            "s3_access_key": env.get("FLEET_S3_ACCESS_KEY") or "minioadmin",
            "s3_secret_key": env.get("FLEET_S3_SECRET_KEY") or "minioadmin",
            "s3_region": env.get("FLEET_S3_REGION") or "us-east-1",
            "s3_bucket": env.get("FLEET_HISTORY_BUCKET") or DEFAULT_BUCKET,
        }
        values.update({k: v for k, v in chosen.items() if v is not None})
        return cls(**values)

    def parquet(self) -> ParquetCandles | None:
        """The cold tier's reader, if an S3 endpoint is given."""
        if self.s3_endpoint is None:
            return None
        filesystem = s3_filesystem(
            self.s3_endpoint, self.s3_access_key, self.s3_secret_key, self.s3_region
        )
        return ParquetCandles(filesystem, self.s3_bucket)


@asynccontextmanager
async def opened_tiers(sources: Sources, *, hot: bool = True) -> AsyncIterator[list[Tier]]:
    """The tiers ``sources`` names, freshest first (hot, warm, cold); clients closed after."""
    tiers: list[Tier] = []
    redis: Redis | None = None
    mongo: AsyncMongoClient[dict[str, Any]] | None = None
    try:
        if hot and sources.redis_url is not None:
            redis = _redis(sources.redis_url)
            tiers.append(RedisCandles(redis))
        if sources.mongo_url is not None:
            mongo = _mongo(sources.mongo_url)
            tiers.append(MongoCandles(mongo[sources.mongo_database]))
        cold = sources.parquet()
        if cold is not None:
            tiers.append(cold)
        yield tiers
    finally:
        if redis is not None:
            await redis.aclose()
        if mongo is not None:
            await mongo.close()


def _redis(url: str) -> Redis:
    from redis.asyncio import Redis  # noqa: PLC0415 - see the module docstring

    return Redis.from_url(url, socket_connect_timeout=5, socket_timeout=30)


def _mongo(url: str) -> AsyncMongoClient[dict[str, Any]]:
    if importlib.util.find_spec("OpenSSL") is None:
        # pymongo first tries its pyOpenSSL TLS context, which imports cryptography's x509
        # (~14 MB resident) before it finds pyOpenSSL missing and falls back to the
        # standard ssl module. Without pyOpenSSL that attempt can only fail: skip it (an
        # import of a None entry raises ImportError, which pymongo expects).
        sys.modules.setdefault("pymongo.pyopenssl_context", None)  # type: ignore[arg-type]
    from pymongo import AsyncMongoClient  # noqa: PLC0415 - see the module docstring

    return AsyncMongoClient(url, serverSelectionTimeoutMS=5000, tz_aware=True)
