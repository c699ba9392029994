"""`fleet doctor`'s check of market-ingest's store: Redis answers and takes the credentials."""

from __future__ import annotations

from redis import exceptions as redis_errors

from fleet_runtime.diagnosis import CheckResult
from fleet_runtime.startup import describe, server_of
from market_ingest.app import open_redis
from market_ingest.settings import MarketIngestSettings


async def diagnose_redis(settings: MarketIngestSettings) -> list[CheckResult]:
    """PING with the worker's URL (read-only)."""
    server = server_of(settings, "redis_url", "Redis")
    check = f"Redis {server.address} ({server.setting})"
    redis = open_redis(settings)
    try:
        await redis.ping()
    except redis_errors.AuthenticationError as exc:
        return [CheckResult.failed(check, describe(exc), f"put the password in {server.setting}")]
    except (redis_errors.ConnectionError, redis_errors.TimeoutError) as exc:
        return [
            CheckResult.failed(check, describe(exc), f"start Redis or point {server.setting} at it")
        ]
    finally:
        await redis.aclose()
    return [CheckResult.passed(check, "PING answered")]
