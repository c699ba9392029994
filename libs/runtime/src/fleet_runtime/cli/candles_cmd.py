"""`fleet candles`: a candle series read across the market-history tiers.

The reading lives in ``fleet_history`` (a library for backtesters and APIs); this command
only parses the request, writes the rows to stdout and, to stderr, which tier served
which part. ``fleet_history`` is imported when the command runs, so no worker loads it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from fleet_runtime.errors import UserError

if TYPE_CHECKING:
    from fleet_history import Report
    from fleet_history.model import Sink
    from fleet_history.sources import Sources


class Format(StrEnum):
    """Output formats."""

    CSV = "csv"
    JSON = "json"
    PARQUET = "parquet"


INCOMPLETE = 3
"""Exit code of a read that reported a gap (a cold file missing or unreadable)."""


def _time(text: str, option: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(
            f"{option} {text!r} is not a time", fix="write it as 2026-01-05 or 2026-01-05T10:00Z"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _sink(fmt: Format) -> Sink:
    from fleet_history.export import CsvSink, JsonSink, ParquetSink  # noqa: PLC0415

    out = sys.stdout.buffer
    if fmt is Format.PARQUET:
        return ParquetSink(out)
    return CsvSink(out) if fmt is Format.CSV else JsonSink(out)


async def _export(
    symbol: str, interval: str, start: datetime, end: datetime, fmt: Format, at: Sources
) -> Report:
    import pyarrow as pa  # noqa: PLC0415 - only this command needs it

    from fleet_history import HistoryError, Report, check_range  # noqa: PLC0415
    from fleet_history.sources import opened_tiers  # noqa: PLC0415
    from fleet_history.stitch import write_series  # noqa: PLC0415

    # The process's own allocator gives memory back between files; Arrow's default pool
    # (mimalloc) kept ~25 MB more at its peak in a month-long export.
    pa.set_memory_pool(pa.system_memory_pool())

    try:
        known = check_range(interval, start, end)
    except HistoryError as exc:
        raise UserError(str(exc), fix=exc.fix) from None
    if fmt is Format.PARQUET and sys.stdout.isatty():
        raise UserError(
            "--format parquet writes binary data", fix="redirect stdout to a file: > out.parquet"
        )
    report = Report()
    try:
        async with opened_tiers(at) as tiers:
            sink = _sink(fmt)
            await write_series(tiers, sink, symbol, known, start, end, report)
            sink.close()
    except HistoryError as exc:
        raise UserError(str(exc), fix=exc.fix) from None
    except OSError as exc:  # pyarrow's S3 errors
        raise UserError(
            f"cold tier (S3 {at.s3_endpoint}, bucket {at.s3_bucket}): {str(exc).splitlines()[0]}",
            fix="point --s3-endpoint/--s3-bucket (or FLEET_S3_ENDPOINT and its keys) at "
            "backup-runner's bucket, or pass --no-cold to read the hot and warm tiers only",
        ) from None
    return report


def candles(
    symbol: Annotated[str, typer.Argument(help="Symbol, e.g. BTCUSDT.")],
    interval: Annotated[str, typer.Argument(help="Candle interval: 1m 5m 15m 30m 1h 4h 1d 1w.")],
    start: Annotated[str, typer.Option("--from", help="First open time (ISO 8601, UTC).")],
    end: Annotated[str, typer.Option("--to", help="End of the range, exclusive (ISO 8601).")],
    fmt: Annotated[
        Format, typer.Option("--format", help="csv, json (one per line) or parquet (binary).")
    ] = Format.CSV,
    redis_url: Annotated[
        str | None, typer.Option(help="Hot tier (default: $FLEET_REDIS_URL or local).")
    ] = None,
    mongo_url: Annotated[
        str | None, typer.Option(help="Warm tier (default: $FLEET_MONGO_URL or local).")
    ] = None,
    mongo_database: Annotated[
        str | None,
        typer.Option(
            help="analytics-projector's database (default: $FLEET_HISTORY_DATABASE or "
            "tradefleet_analytics)."
        ),
    ] = None,
    s3_endpoint: Annotated[
        str | None, typer.Option(help="Cold tier S3 (default: $FLEET_S3_ENDPOINT or local).")
    ] = None,
    s3_bucket: Annotated[
        str | None,
        typer.Option(
            help="backup-runner's bucket (default: $FLEET_HISTORY_BUCKET or its default)."
        ),
    ] = None,
    cold: Annotated[
        bool, typer.Option("--cold/--no-cold", help="Read the cold tier (S3 Parquet) too.")
    ] = True,
) -> None:
    """Stream a candle series stitched from the hot (Redis), warm (MongoDB) and cold (S3) tiers.

    Each period comes once, from Redis where it still holds it, else from MongoDB's
    price_history, else from backup-runner's Parquet files. Stderr says which tier served
    which part, and names every gap (a cold file missing or unreadable): then the exit
    code is 3. S3 keys come from $FLEET_S3_ACCESS_KEY, $FLEET_S3_SECRET_KEY, $FLEET_S3_REGION.
    """
    from fleet_history.sources import Sources  # noqa: PLC0415 - loaded when the command runs

    first, last = _time(start, "--from"), _time(end, "--to")
    sources = Sources.from_env(
        os.environ,
        redis_url=redis_url,
        mongo_url=mongo_url,
        mongo_database=mongo_database,
        s3_endpoint=s3_endpoint,
        s3_bucket=s3_bucket,
    )
    sources = dataclasses.replace(
        sources,
        redis_url=sources.redis_url or "redis://127.0.0.1:6379/0",
        mongo_url=sources.mongo_url or "mongodb://127.0.0.1:27017",
        s3_endpoint=(sources.s3_endpoint or "http://127.0.0.1:9000") if cold else None,
    )
    report = asyncio.run(_export(symbol, interval, first, last, fmt, sources))
    if not report.runs:
        typer.echo(f"no {interval} candles of {symbol} in that range in any tier", err=True)
    for run in report.runs:
        typer.echo(
            f"{run.tier}: {run.count} candles {run.first.isoformat()} .. {run.last.isoformat()}",
            err=True,
        )
    for gap in report.gaps:
        typer.echo(
            f"gap in {gap.tier}: {gap.start.isoformat()} .. {gap.end.isoformat()}: {gap.reason}",
            err=True,
        )
    if report.gaps:
        raise typer.Exit(INCOMPLETE)
