"""`fleet doctor`'s check of analytics-projector's store: MongoDB answers, user accepted."""

from __future__ import annotations

from pymongo import AsyncMongoClient
from pymongo.errors import ConnectionFailure, OperationFailure

from analytics_projector.settings import AnalyticsProjectorSettings
from fleet_runtime.diagnosis import CheckResult
from fleet_runtime.startup import describe, server_of

# MongoDB's error codes for a refused login and a missing privilege.
AUTH_FAILED = 18
UNAUTHORIZED = 13


async def diagnose_mongo(settings: AnalyticsProjectorSettings) -> list[CheckResult]:
    """``ping``, then list the read models' collections as the worker's user (read-only)."""
    server = server_of(settings, "mongo_url", "MongoDB")
    check = f"MongoDB {server.address} ({server.setting})"
    timeout_ms = int(settings.mongo_timeout_s * 1000)
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
        settings.mongo_url.get_secret_value(),
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
    )
    try:
        await client.admin.command("ping")
        await client[settings.mongo_database].list_collection_names()
    except OperationFailure as exc:
        if exc.code in (AUTH_FAILED, UNAUTHORIZED):
            fix = f"put the user and password of deploy/mongo/initdb in {server.setting}"
        else:
            fix = "see the MongoDB server's log for the refused command"
        return [CheckResult.failed(check, describe(exc), fix)]
    except ConnectionFailure as exc:
        return [
            CheckResult.failed(
                check, describe(exc), f"start MongoDB or point {server.setting} at it"
            )
        ]
    finally:
        await client.close()
    return [CheckResult.passed(check, f"database {settings.mongo_database} readable")]
