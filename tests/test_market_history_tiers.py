"""`fleet candles` across all three tiers, each written by its own worker's code, on real
servers (Redis, the MongoDB-wire server, NATS, SeaweedFS).

The ticks go through market-ingest's store (Redis keeps the ``KEPT`` latest bars); the
candles it closes are published to a MARKET stream, archived by a backup-runner stream
backup and compacted into the cold tier's Parquet files (only the oldest part: that
backup ran long ago); MongoDB's price_history holds a middle part, as analytics-projector
stores it (older candles have expired from it). The expected series is computed here
from the ticks alone, and the cold files are also read here with pyarrow straight from S3.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import random
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import nats
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from nats.js.api import StreamConfig
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from analytics_projector.retention import Retention
from analytics_projector.store.candles import candle_doc, candle_id
from backup_runner.app import object_store
from backup_runner.runner import BackupRequest, BackupRunner
from backup_runner.settings import BackupRunnerSettings
from fleet_events import CandleInterval, MarketCandle, MarketTick, encode, new_event, subject_for
from fleet_history import s3_filesystem
from fleet_testing import Fleet
from fleet_testing.replaying import run_fleet
from market_ingest.logic import Rules, SeqTick
from market_ingest.store import RedisMarketStore
from market_ingest.ticks import Trade

SYMBOL = "ETHUSDT"
BUCKET = "history-tiers"
KEPT = 12


@dataclass(frozen=True)
class Case:
    """A series of ``bars`` periods; the cold tier holds bars [0, cold_until), the warm
    one [warm_from, warm_until), the hot one the ``KEPT`` latest; ``quiet`` has no trade."""

    interval: CandleInterval
    bars: int
    cold_until: int
    warm_from: int
    warm_until: int
    quiet: int

    @property
    def start(self) -> datetime:
        width = self.interval.duration
        now = datetime.now(UTC)
        seconds = width.total_seconds()
        aligned = datetime.fromtimestamp(now.timestamp() // seconds * seconds, UTC)
        return aligned - width * (self.bars + 2)


CASES = [
    Case(CandleInterval.M1, bars=120, cold_until=70, warm_from=40, warm_until=112, quiet=17),
    Case(CandleInterval.H1, bars=40, cold_until=23, warm_from=13, warm_until=32, quiet=5),
]

Row = tuple[datetime, Decimal, Decimal, Decimal, Decimal, Decimal, int]


def ticks(case: Case, start: datetime) -> list[tuple[datetime, Decimal, Decimal]]:
    rng = random.Random(case.bars)
    out = []
    price = Decimal(3000)
    step = case.interval.duration / 5
    for bar in range(case.bars):
        if bar == case.quiet:
            continue
        for k in range(rng.randint(1, 4)):
            price += Decimal(rng.randint(-500, 500)) / 100
            at = (
                start
                + case.interval.duration * bar
                + step * k
                + timedelta(seconds=rng.randint(0, 9))
            )
            out.append((at, price, Decimal(rng.randint(1, 900)) / 1000))
    return out


def expected(
    case: Case, start: datetime, trades: list[tuple[datetime, Decimal, Decimal]]
) -> list[Row]:
    """OHLCV per period, computed from the ticks alone."""
    width = case.interval.duration
    groups: dict[datetime, list[tuple[datetime, Decimal, Decimal]]] = {}
    for at, price, qty in trades:
        groups.setdefault(start + width * ((at - start) // width), []).append((at, price, qty))
    return [
        (
            opened,
            group[0][1],
            max(p for _, p, _ in group),
            min(p for _, p, _ in group),
            group[-1][1],
            sum((q for _, _, q in group), Decimal(0)),
            len(group),
        )
        for opened, group in sorted(groups.items())
    ]


def bar_of(case: Case, start: datetime, candle: MarketCandle) -> int:
    return (candle.open_time - start) // case.interval.duration


async def fill_tiers(
    fleet: Fleet, case: Case, start: datetime, trades: list[tuple[datetime, Decimal, Decimal]]
) -> None:
    """Hot from the ticks, cold from the archived candle events, warm from a middle part."""
    redis = Redis.from_url(fleet.redis.url)
    mongo: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(fleet.mongo.url, tz_aware=True)
    nc = await nats.connect(fleet.nats.url, **fleet.nats.client_options())
    try:
        store = RedisMarketStore(redis, Rules((case.interval,), KEPT), outbox=False, prices=False)
        closed: list[tuple[MarketCandle, int]] = []
        for seq, (at, price, qty) in enumerate(trades, start=1):
            tick = MarketTick(
                symbol=SYMBOL, price=price, quantity=qty, timestamp=at, is_buyer_maker=True
            )
            event = new_event(tick, source="test")
            for write in await store.apply(
                {SYMBOL: [SeqTick(seq, Trade.of(event.id, event.data))]}
            ):
                closed += [(c.data, seq) for c in write.closed]
        js = nc.jetstream()
        await js.add_stream(StreamConfig(name="MARKET", subjects=["market.>"]))
        for candle, _ in closed:
            if bar_of(case, start, candle) < case.cold_until:
                event = new_event(candle, source="market-ingest")
                await js.publish(subject_for(event), encode(event))
        env = fleet.s3.env()
        settings = BackupRunnerSettings(
            s3_endpoint=fleet.s3.endpoint, s3_access_key=env["FLEET_S3_ACCESS_KEY"],
            s3_secret_key=env["FLEET_S3_SECRET_KEY"], s3_region=env["FLEET_S3_REGION"],
            s3_bucket=BUCKET, archive_streams=["MARKET"],
        )  # fmt: skip
        done = await BackupRunner(settings, object_store(settings), js).run(
            BackupRequest("cold-1", "stream", None, "test")
        )
        assert done.manifest.gaps == []
        warm = [
            {"_id": candle_id(c), **candle_doc(c, seq, Retention())}
            for c, seq in closed
            if case.warm_from <= bar_of(case, start, c) < case.warm_until
        ]
        await mongo["tradefleet_analytics"]["price_history"].insert_many(warm)
    finally:
        await nc.close()
        await redis.aclose()
        await mongo.close()


def cold_rows(fleet: Fleet, interval: CandleInterval) -> list[Row]:
    """The cold tier as pyarrow's dataset reader sees it in the bucket (not fleet_history)."""
    env = fleet.s3.env()
    fs = s3_filesystem(
        env["FLEET_S3_ENDPOINT"], env["FLEET_S3_ACCESS_KEY"], env["FLEET_S3_SECRET_KEY"],
        env["FLEET_S3_REGION"],
    )  # fmt: skip
    table = ds.dataset(f"{BUCKET}/history/candles", filesystem=fs, partitioning="hive").to_table(
        filter=(ds.field("interval") == interval.value) & (ds.field("symbol") == SYMBOL)
    )
    return [
        (r["open_time"], r["open"], r["high"], r["low"], r["close"], r["volume"], r["trade_count"])
        for r in table.sort_by("open_time").to_pylist()
    ]


def parsed(out: str) -> tuple[list[Row], list[str]]:
    rows = list(csv.DictReader(io.StringIO(out)))
    got = [
        (
            datetime.fromisoformat(r["open_time"]), Decimal(r["open"]), Decimal(r["high"]),
            Decimal(r["low"]), Decimal(r["close"]), Decimal(r["volume"]), int(r["trade_count"]),
        )
        for r in rows
    ]  # fmt: skip
    return got, [r["closed"] for r in rows]


@pytest.mark.parametrize("case", CASES, ids=[c.interval.value for c in CASES])
async def test_candles_stitch_hot_warm_and_cold_exactly(
    isolated_fleet: Fleet, case: Case, tmp_path: Path
) -> None:
    isolated_fleet.start("nats", "redis", "mongo", "s3")
    start = case.start
    trades = ticks(case, start)
    await fill_tiers(isolated_fleet, case, start, trades)
    want = expected(case, start, trades)
    assert len(want) == case.bars - 1  # the quiet period has no candle

    # The cold files, read without the project's reader, hold exactly the archived part.
    cold_from_s3 = cold_rows(isolated_fleet, case.interval)
    assert cold_from_s3 == [
        r for r in want if r[0] < start + case.interval.duration * case.cold_until
    ]

    env = {**os.environ, **isolated_fleet.env(), "FLEET_HISTORY_BUCKET": BUCKET}
    args = ["candles", SYMBOL, case.interval.value, "--from", start.isoformat(),
            "--to", (start + case.interval.duration * (case.bars + 1)).isoformat()]  # fmt: skip
    result = await run_fleet(args, env)
    assert result.code == 0, result.err
    got, closed = parsed(result.out)
    assert got == want  # every period once, the quiet one absent, seams exact
    assert closed == ["True"] * (len(got) - 1) + ["False"]
    # Cold serves what neither Redis nor MongoDB holds any more, warm what Redis lost,
    # Redis its KEPT latest bars (the warm/hot and cold/warm overlaps go to the fresher tier).
    hot_from = case.bars - KEPT
    lines = result.err.strip().splitlines()
    assert [line.split(" candles ")[0] for line in lines] == [
        f"cold (S3 Parquet): {case.warm_from - 1}",  # minus the quiet period
        f"warm (MongoDB): {hot_from - case.warm_from}",
        f"hot (Redis): {KEPT}",
    ], result.err
    width = case.interval.duration

    def at(bar: int) -> str:
        return (start + width * bar).isoformat()

    assert lines[0].endswith(f"{at(0)} .. {at(case.warm_from - 1)}")
    assert lines[1].endswith(f"{at(case.warm_from)} .. {at(hot_from - 1)}")
    assert lines[2].endswith(f"{at(hot_from)} .. {at(case.bars - 1)}")

    # The same series as Parquet (stdout to a file), read back with pyarrow.
    out = tmp_path / "series.parquet"
    with out.open("wb") as sink:
        proc = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "fleet_runtime.cli", *args, "--format", "parquet"],
            env=env, stdout=sink, stderr=subprocess.PIPE, timeout=120, check=False,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    table = pq.read_table(out)
    assert [
        (r["open_time"], r["open"], r["high"], r["low"], r["close"], r["volume"], r["trade_count"])
        for r in table.to_pylist()
    ] == want
    assert table.column("closed").to_pylist() == [True] * (len(want) - 1) + [False]
