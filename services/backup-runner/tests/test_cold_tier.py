"""The cold market-history tier on real servers (NATS, SeaweedFS): candle events archived
by a stream backup become Parquet files, read back here with pyarrow straight from the
S3 server, without the project's reader."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow.dataset as ds
import pytest
import zstandard
from nats.js.api import StreamConfig
from nats.js.client import JetStreamContext
from pydantic import SecretStr

from backup_runner import coldtier
from backup_runner.archive_chain import write_pruned
from backup_runner.candlefiles import ColdRetention
from backup_runner.objects import MinioObjectStore
from backup_runner.runner import BackupRequest, BackupRunner
from backup_runner.settings import BackupRunnerSettings
from backup_runner.targets import streams
from fleet_events import CandleInterval, MarketCandle, encode, new_event, subject_for
from fleet_events.history import COLD_STATE_KEY, cold_key
from fleet_history import s3_filesystem
from fleet_testing.servers import S3Server

M1, H1 = CandleInterval.M1, CandleInterval.H1
ROOT = Path(__file__).resolve().parents[3]


def candle(
    symbol: str, interval: CandleInterval, at: datetime, price: Decimal, n: int = 3
) -> MarketCandle:
    return MarketCandle(
        symbol=symbol,
        interval=interval,
        open_time=at,
        close_time=at + interval.duration,
        open=price,
        high=price + Decimal("1.25"),
        low=price - Decimal("0.5"),
        close=price + Decimal("0.75"),
        volume=Decimal("0.123456789012345678") * n,
        trade_count=n,
    )


class Scene:
    """A MARKET-like stream of its own (candle subjects of one symbol) and a runner."""

    def __init__(
        self, js: JetStreamContext, settings: BackupRunnerSettings, store: MinioObjectStore
    ):
        self.js = js
        self.symbol = f"T{uuid.uuid4().hex[:8].upper()}"
        self.stream = f"MKT{self.symbol}"
        self.settings = settings.model_copy(
            update={
                "archive_streams": [self.stream],
                "archive_subjects": {self.stream: ["market.candle.>"]},
                "history_stream": self.stream,
            }
        )
        self.store = store
        self.runner = BackupRunner(self.settings, store, js)

    async def create(self) -> None:
        await self.js.add_stream(
            StreamConfig(
                name=self.stream,
                subjects=[f"market.candle.*.{self.symbol}", f"market.tick.{self.symbol}"],
            )
        )

    async def publish(self, *candles: MarketCandle) -> None:
        for c in candles:
            event = new_event(c, source="test")
            await self.js.publish(subject_for(event), encode(event))

    async def backup(self) -> dict[str, object]:
        done = await self.runner.run(
            BackupRequest(f"b-{uuid.uuid4().hex[:12]}", "stream", None, "test")
        )
        position = done.manifest.positions["history.candles"]
        assert isinstance(position, dict)
        return {**position, "gaps": done.manifest.gaps}


def read_dataset(s3: S3Server, bucket: str, symbol: str, interval: CandleInterval) -> list[tuple]:
    """The series as pyarrow's hive-partitioned dataset reader sees it in the bucket."""
    env = s3.env()
    fs = s3_filesystem(
        env["FLEET_S3_ENDPOINT"], env["FLEET_S3_ACCESS_KEY"], env["FLEET_S3_SECRET_KEY"],
        env["FLEET_S3_REGION"],
    )  # fmt: skip
    dataset = ds.dataset(f"{bucket}/history/candles", filesystem=fs, partitioning="hive")
    table = dataset.to_table(
        filter=(ds.field("interval") == interval.value) & (ds.field("symbol") == symbol)
    ).sort_by("open_time")
    return [
        (r["open_time"], r["open"], r["high"], r["low"], r["close"], r["volume"], r["trade_count"])
        for r in table.to_pylist()
    ]


def as_rows(*candles: MarketCandle) -> list[tuple]:
    return [
        (c.open_time, c.open, c.high, c.low, c.close, c.volume, c.trade_count)
        for c in sorted(candles, key=lambda c: c.open_time)
    ]


async def test_candle_events_become_parquet_files_per_series_and_period(
    settings: BackupRunnerSettings,
    store: MinioObjectStore,
    js: JetStreamContext,
    s3_server: S3Server,
) -> None:
    scene = Scene(js, settings, store)
    await scene.create()
    # 1m candles in two months (two files), 1h candles in one year (one file), and a tick
    # on the stream that the archive's filter leaves out.
    nov = datetime(2026, 11, 30, 23, 58, tzinfo=UTC)
    minutes = [
        candle(scene.symbol, M1, nov + timedelta(minutes=k), Decimal(100 + k)) for k in range(4)
    ]
    evening = datetime(2026, 11, 30, 20, tzinfo=UTC)
    hours = [
        candle(scene.symbol, H1, evening + timedelta(hours=k), Decimal(200 + k)) for k in range(5)
    ]
    await scene.publish(*minutes, *hours)
    await js.publish(f"market.tick.{scene.symbol}", b"{}")

    first = await scene.backup()
    assert (first["candles"], first["files_written"], first["gaps"]) == (9, 3, [])
    keys = store.keys("history/candles/")
    assert keys == sorted(
        [
            f"history/candles/interval=1h/symbol={scene.symbol}/2026.parquet",
            f"history/candles/interval=1m/symbol={scene.symbol}/2026-11.parquet",
            f"history/candles/interval=1m/symbol={scene.symbol}/2026-12.parquet",
            COLD_STATE_KEY,
        ]
    )
    assert read_dataset(s3_server, store.bucket, scene.symbol, M1) == as_rows(*minutes)
    assert read_dataset(s3_server, store.bucket, scene.symbol, H1) == as_rows(*hours)

    # A rerun (a redelivered request) with nothing new writes nothing; one that starts
    # again from the beginning (position lost) rewrites byte-identical files.
    before = {k: b"".join(store.get_chunks(k)) for k in keys if k.endswith(".parquet")}
    again = await scene.backup()
    assert again["files_written"] == 0
    store.delete(COLD_STATE_KEY)
    rebuilt = await scene.backup()
    assert (rebuilt["candles"], rebuilt["files_written"]) == (9, 0)
    assert {k: b"".join(store.get_chunks(k)) for k in before} == before

    # A late correction of 23:59 and a new candle: only the November file changes, and
    # the later event wins.
    corrected = candle(scene.symbol, M1, nov + timedelta(minutes=1), Decimal("150.5"), n=9)
    await scene.publish(corrected)
    late = await scene.backup()
    assert (late["candles"], late["files_written"]) == (1, 1)
    november = cold_key(M1, scene.symbol, nov)
    assert b"".join(store.get_chunks(november)) != before[november]
    for key, data in before.items():
        if key != november:
            assert b"".join(store.get_chunks(key)) == data
    assert read_dataset(s3_server, store.bucket, scene.symbol, M1) == as_rows(
        minutes[0], corrected, *minutes[2:]
    )


async def test_cold_retention_per_interval_deletes_old_files_and_keeps_recent_ones(
    settings: BackupRunnerSettings, store: MinioObjectStore, js: JetStreamContext
) -> None:
    scene = Scene(js, settings, store)
    await scene.create()
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    old_1m = candle(
        scene.symbol, M1, now - timedelta(days=400), Decimal(1)
    )  # month ended > 1 y ago
    recent_1m = candle(scene.symbol, M1, now - timedelta(days=300), Decimal(2))
    old_1h = candle(scene.symbol, H1, now - timedelta(days=6 * 365), Decimal(3))  # year > 5 y ago
    recent_1h = candle(scene.symbol, H1, now - timedelta(days=3 * 365), Decimal(4))
    await scene.publish(old_1m, recent_1m, old_1h, recent_1h)
    store.ensure_bucket()
    # The archive, then the cold files as a compaction 500 days ago wrote them: all four
    # periods were within their retention then.
    await streams.back_up(
        js=js, streams=[scene.stream], store=store, raw=store, segment_max=100,
        subjects={scene.stream: ["market.candle.>"]},
    )  # fmt: skip
    coldtier.compact(
        segments=store, files=store, stream=scene.stream, retention=ColdRetention(),
        now=now - timedelta(days=500),
    )  # fmt: skip
    files = [k for k in store.keys("history/candles/") if k.endswith(".parquet")]
    four = (old_1m, recent_1m, old_1h, recent_1h)
    assert files == sorted({cold_key(c.interval, scene.symbol, c.open_time) for c in four})
    assert len(files) == 4

    # Today's stream backup applies retention on the S3 server: 1m after a year, 1h
    # after five.
    position = await scene.backup()
    assert position["files_deleted"] == 2
    kept = [k for k in store.keys("history/candles/") if k.endswith(".parquet")]
    recent = (recent_1m, recent_1h)
    assert kept == sorted(cold_key(c.interval, scene.symbol, c.open_time) for c in recent)

    # A shorter setting for 1m only (BACKUP_RUNNER_HISTORY_1M_DAYS) takes the recent 1m file too.
    coldtier.apply_retention(store, ColdRetention(days_1m=200), now)
    assert [k for k in store.keys("history/candles/") if k.endswith(".parquet")] == [
        cold_key(H1, scene.symbol, recent_1h.open_time)
    ]


def test_the_s3_lifecycle_rules_in_deploy_match_the_default_retention() -> None:
    written = json.loads((ROOT / "deploy/s3/lifecycle.json").read_text())
    assert written == ColdRetention().lifecycle()
    days = {r["Filter"]["Prefix"]: r["Expiration"]["Days"] for r in written["Rules"]}
    assert days["history/candles/interval=1m/"] == 365
    assert days["history/candles/interval=1h/"] == 5 * 365
    assert len(days) == len(CandleInterval)


async def test_an_encrypted_archive_still_gives_parquet_files_in_the_clear(
    settings: BackupRunnerSettings,
    store: MinioObjectStore,
    js: JetStreamContext,
    s3_server: S3Server,
) -> None:
    key = SecretStr(base64.b64encode(bytes(range(32))).decode())
    scene = Scene(js, settings.model_copy(update={"encryption_key": key}), store)
    await scene.create()
    minutes = [
        candle(
            scene.symbol, M1, datetime(2026, 12, 1, tzinfo=UTC) + timedelta(minutes=k), Decimal(7)
        )
        for k in range(3)
    ]
    await scene.publish(*minutes)
    position = await scene.backup()
    assert position["files_written"] == 1
    # The segment is encrypted (zstd cannot open it); the cold file is plain Parquet.
    segment = next(k for k in store.keys(f"streams/{scene.stream}/"))
    with pytest.raises(zstandard.ZstdError):
        zstandard.ZstdDecompressor().decompressobj().decompress(b"".join(store.get_chunks(segment)))
    assert read_dataset(s3_server, store.bucket, scene.symbol, M1) == as_rows(*minutes)


async def test_segments_pruned_before_compaction_are_reported_once(
    settings: BackupRunnerSettings, store: MinioObjectStore, js: JetStreamContext
) -> None:
    scene = Scene(js, settings, store)
    await scene.create()
    first = [
        candle(
            scene.symbol, M1, datetime(2026, 12, 2, tzinfo=UTC) + timedelta(minutes=k), Decimal(5)
        )
        for k in range(3)
    ]
    await scene.publish(*first)
    store.ensure_bucket()
    # Archived but never compacted, then pruned (as archive retention does: marker first).
    await streams.back_up(
        js=js, streams=[scene.stream], store=store, raw=store, segment_max=100,
        subjects={scene.stream: ["market.candle.>"]},
    )  # fmt: skip
    write_pruned(store, scene.stream, 3, datetime.now(UTC), 30)
    for key in store.keys(f"streams/{scene.stream}/"):
        if key.endswith(".jsonl.zst"):
            store.delete(key)
    later = candle(scene.symbol, M1, datetime(2026, 12, 2, 1, tzinfo=UTC), Decimal(6))
    await scene.publish(later)

    position = await scene.backup()
    assert position["gaps"] == [
        f"{scene.stream} 1-3 were pruned from the archive before the cold tier compacted "
        "them: their candles are not in the cold tier"
    ]
    assert (position["archived_through"], position["candles"]) == (4, 1)
    again = await scene.backup()
    assert again["gaps"] == []
