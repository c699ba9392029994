"""`fleet candles`: a candle series read across the market-history tiers.

The reading lives in ``fleet_history`` (a library for backtesters and APIs); this command
only parses the request, writes the rows to stdout and, to stderr, which tier served
which part. ``fleet_history`` is imported when the command runs, so no worker loads it.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import sys
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from fleet_runtime.errors import UserError

if TYPE_CHECKING:
    from fleet_history import Candle, Report

_FIELDS = ["open_time", "open", "high", "low", "close", "volume", "trade_count", "closed"]


class Format(StrEnum):
    """Output formats."""

    CSV = "csv"
    JSON = "json"


def _time(text: str, option: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(
            f"{option} {text!r} is not a time", fix="write it as 2026-01-05 or 2026-01-05T10:00Z"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _row(candle: Candle) -> dict[str, Any]:
    return {
        "open_time": candle.open_time.isoformat().replace("+00:00", "Z"),
        "open": str(candle.open),
        "high": str(candle.high),
        "low": str(candle.low),
        "close": str(candle.close),
        "volume": str(candle.volume),
        "trade_count": candle.trade_count,
        "closed": candle.closed,
    }


async def _export(
    symbol: str,
    interval: str,
    start: datetime,
    end: datetime,
    fmt: Format,
    redis_url: str,
    mongo_url: str,
    database: str,
) -> Report:
    from pymongo import AsyncMongoClient  # noqa: PLC0415 - only this command needs it
    from redis.asyncio import Redis  # noqa: PLC0415

    from fleet_history import (  # noqa: PLC0415
        HistoryError,
        MongoCandles,
        RedisCandles,
        Report,
        Tier,
        check_range,
        read_candles,
    )

    try:
        known = check_range(interval, start, end)
    except HistoryError as exc:
        raise UserError(str(exc), fix=exc.fix) from None
    redis = Redis.from_url(redis_url, socket_connect_timeout=5, socket_timeout=30)
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        mongo_url, serverSelectionTimeoutMS=5000, tz_aware=True
    )
    report = Report()
    writer = csv.DictWriter(sys.stdout, fieldnames=_FIELDS) if fmt is Format.CSV else None
    if writer is not None:
        writer.writeheader()
    try:
        tiers: list[Tier] = [RedisCandles(redis), MongoCandles(mongo[database])]
        async for candle in read_candles(tiers, symbol, known, start, end, report):
            if writer is not None:
                writer.writerow(_row(candle))
            else:
                sys.stdout.write(json.dumps(_row(candle)) + "\n")
    finally:
        await redis.aclose()
        await mongo.close()
    return report


def candles(
    symbol: Annotated[str, typer.Argument(help="Symbol, e.g. BTCUSDT.")],
    interval: Annotated[str, typer.Argument(help="Candle interval: 1m 5m 15m 30m 1h 4h 1d 1w.")],
    start: Annotated[str, typer.Option("--from", help="First open time (ISO 8601, UTC).")],
    end: Annotated[str, typer.Option("--to", help="End of the range, exclusive (ISO 8601).")],
    fmt: Annotated[Format, typer.Option("--format", help="csv, or json (one per line).")] = (
        Format.CSV
    ),
    redis_url: Annotated[
        str | None, typer.Option(help="Hot tier (default: $FLEET_REDIS_URL or local).")
    ] = None,
    mongo_url: Annotated[
        str | None, typer.Option(help="Warm tier (default: $FLEET_MONGO_URL or local).")
    ] = None,
    mongo_database: Annotated[
        str, typer.Option(help="analytics-projector's database.")
    ] = "tradefleet_analytics",
) -> None:
    """Stream a candle series stitched from the hot (Redis) and warm (MongoDB) tiers.

    Each period comes once, from Redis where it still holds it, else from MongoDB's
    price_history. Stderr says which tier served which part.
    """
    first, last = _time(start, "--from"), _time(end, "--to")
    report = asyncio.run(
        _export(
            symbol,
            interval,
            first,
            last,
            fmt,
            redis_url or os.environ.get("FLEET_REDIS_URL") or "redis://127.0.0.1:6379/0",
            mongo_url or os.environ.get("FLEET_MONGO_URL") or "mongodb://127.0.0.1:27017",
            mongo_database,
        )
    )
    if not report.runs:
        typer.echo(f"no {interval} candles of {symbol} in that range in any tier", err=True)
    for run in report.runs:
        typer.echo(
            f"{run.tier}: {run.count} candles {run.first.isoformat()} .. {run.last.isoformat()}",
            err=True,
        )
