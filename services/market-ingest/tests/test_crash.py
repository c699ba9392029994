"""Crashes: kill -9 of the worker process mid-stream, and a crash between the Redis commit
and the candle publish."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import nats
import pytest
from nats.js.client import JetStreamContext
from redis.asyncio import Redis

from fleet_events import CandleInterval, Event, MarketTick
from fleet_runtime.errors import StoreUnavailable
from fleet_runtime.publisher import EventPublisher
from fleet_runtime.topology import apply, load_topology
from fleet_testing import Fleet
from fleet_testing.probes import http_json
from fleet_testing.topologies import StreamsFile
from market_ingest.bars import epoch_us
from market_ingest.handlers import TickHandler
from market_ingest.logic import candle_event_id
from market_ingest.metrics import MarketIngestMetrics
from market_ingest.store import Keys

from .conftest import (
    STREAMS,
    SYMBOLS,
    T0,
    Sequencer,
    by_symbol,
    generate_ticks,
    make_store,
    seq_ticks,
    start_servers,
    tick,
)
from .test_worker import (
    KEPT,
    LIVE,
    assert_matches_model,
    candle_messages,
    closed_candles,
    publish,
    wait_applied,
    wait_until,
)


async def spawn(
    fleet: Fleet, log: Path, *, partition: int | None = None, streams: Path | None = None
) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        **fleet.nats.env(),  # FLEET_NATS_CREDS: the worker connects as itself
        "MARKET_INGEST_NATS_URL": fleet.nats.url,
        "MARKET_INGEST_REDIS_URL": fleet.redis.url,
        "MARKET_INGEST_CANDLES_KEPT": str(KEPT),
        "MARKET_INGEST_LOG_FORMAT": "json",
    }
    if streams is not None:
        env["MARKET_INGEST_STREAMS_FILE"] = str(streams)
    args = ["-m", "market_ingest"]
    if partition is not None:
        args = ["-m", "fleet_runtime.cli", "worker", "run", "market-ingest"]
        args += ["--partition", str(partition)]
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable, *args, env=env, stdout=out, stderr=out
        )


async def test_kill_9_mid_stream_then_restart_gives_exact_volumes(
    isolated_fleet: Fleet, tmp_path: Path
) -> None:
    await start_servers(isolated_fleet)
    nc = await nats.connect(isolated_fleet.nats.url)
    js = nc.jetstream()
    redis = Redis.from_url(isolated_fleet.redis.url)
    events = generate_ticks(seed=41, n=20_000)
    log = tmp_path / "worker.log"
    proc = await spawn(isolated_fleet, log)
    try:
        publishing = asyncio.create_task(publish(js, events))

        async def some_applied() -> bool:
            got = await redis.hget(LIVE.seq("BTCUSDT"), "seq")
            return got is not None and int(got) > 3000

        await wait_until(some_applied, 60, "the worker to apply ticks")
        proc.send_signal(signal.SIGKILL)
        assert await proc.wait() == -signal.SIGKILL
        ticks = await publishing
        applied_at_kill = int(await redis.hget(LIVE.seq("BTCUSDT"), "seq"))
        assert applied_at_kill < ticks[-1].seq

        proc = await spawn(isolated_fleet, log)
        await wait_applied(redis, ticks, within_s=120)
        await assert_matches_model(redis, ticks)
        expected = closed_candles(ticks)
        await wait_until(lambda: _is(candle_messages(js), expected), 30, "candle events")
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 30)
        await nc.close()
        await redis.aclose()


async def test_two_partitions_by_symbol_one_killed_give_exact_state(
    isolated_fleet: Fleet, tmp_path: Path
) -> None:
    """MARKET ticks split two ways by symbol, one process each; one is kill -9'd."""
    streams = (
        StreamsFile(STREAMS)
        .partition("MARKET", subjects="market.tick.*", count=2, key=[1], workers=["market-ingest"])
        .write(tmp_path / "streams.yaml")
    )
    await asyncio.to_thread(isolated_fleet.start, "nats", "redis")
    nc = await nats.connect(isolated_fleet.nats.url)
    js = nc.jetstream()
    await apply(js, load_topology(streams))
    redis = Redis.from_url(isolated_fleet.redis.url)
    events = generate_ticks(seed=43, n=12_000)
    procs = [
        await spawn(isolated_fleet, tmp_path / f"p{k}.log", partition=k, streams=streams)
        for k in (0, 1)
    ]
    try:
        publishing = asyncio.create_task(publish(js, events))

        async def some_applied() -> bool:
            seqs = [await redis.hget(LIVE.seq(s), "seq") for s in SYMBOLS]
            return sum(int(x) for x in seqs if x is not None) > 3000

        await wait_until(some_applied, 60, "the partitions to apply ticks")
        procs[0].send_signal(signal.SIGKILL)
        assert await procs[0].wait() == -signal.SIGKILL
        ticks = await publishing
        procs[0] = await spawn(isolated_fleet, tmp_path / "p0.log", partition=0, streams=streams)
        await wait_applied(redis, ticks, within_s=120)
        await assert_matches_model(redis, ticks)
        expected = closed_candles(ticks)
        await wait_until(lambda: _is(candle_messages(js), expected), 30, "candle events")
        for k in (0, 1):
            info = await js.consumer_info("MARKET", f"market-ingest-p{k}")
            assert info.delivered.consumer_seq > 0, f"partition {k} consumed nothing"
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                await asyncio.wait_for(proc.wait(), 30)
        await nc.close()
        await redis.aclose()


async def _is(value: object, expected: int) -> bool:
    return bool(await value == expected)  # type: ignore[misc]


@asynccontextmanager
async def _clients(fleet: Fleet) -> AsyncIterator[tuple[JetStreamContext, Redis]]:
    """Started servers with the repository's streams, and a client of each."""
    await start_servers(fleet)
    nc = await nats.connect(fleet.nats.url)
    redis = Redis.from_url(fleet.redis.url)
    try:
        yield nc.jetstream(), redis
    finally:
        await nc.close()
        await redis.aclose()


def _closing_two_candles(symbol: str) -> list[Event[MarketTick]]:
    """Ticks in three consecutive minutes: the first two 1m candles close."""
    return [tick(symbol, T0 + timedelta(seconds=sec), "10") for sec in (0, 61, 122)]


async def test_candles_committed_but_not_published_go_out_once_on_recovery(
    isolated_fleet: Fleet,
) -> None:
    async with _clients(isolated_fleet) as (js, redis):
        s = "BTCUSDT"
        events = _closing_two_candles(s)
        # The worker committed the batch and died before publishing: the outbox holds them.
        await make_store(redis, LIVE).apply(by_symbol(seq_ticks(events)))
        for _ in range(2):  # two restarts: the second finds nothing left to publish
            metrics = MarketIngestMetrics()
            handler = TickHandler(make_store(redis, LIVE), EventPublisher(js), metrics)
            await handler.recover()
        assert await candle_messages(js) == 2
        m0 = epoch_us(T0) // 1000
        ids = set()
        for seq in (1, 2):
            msg = await js.get_msg("MARKET", seq)
            ids.add((msg.subject, (msg.headers or {})["Nats-Msg-Id"]))
        assert ids == {
            ("market.candle.1m.BTCUSDT", str(candle_event_id(s, i, m0 + n * 60_000)))
            for i, n in ((CandleInterval.M1, 0), (CandleInterval.M1, 1))
        }
        assert await redis.hlen(Keys().outbox(s)) == 0
        # A replay of the same ticks into a cleared Redis re-queues the same ids: the
        # stream's duplicate window drops them.
        await redis.flushdb()
        await make_store(redis, LIVE).apply(by_symbol(seq_ticks(events)))
        handler = TickHandler(make_store(redis, LIVE), EventPublisher(js), MarketIngestMetrics())
        await handler.recover()
        assert await candle_messages(js) == 2


async def test_candles_the_stream_did_not_store_stay_queued_and_go_out_with_the_retry(
    isolated_fleet: Fleet,
) -> None:
    async with _clients(isolated_fleet) as (js, redis):
        s = "BTCUSDT"
        events = _closing_two_candles(s)
        batch = Sequencer().batch(events)
        publisher = EventPublisher(js, timeout_s=0.3, attempts=2, backoff_s=0.05)
        handler = TickHandler(make_store(redis, LIVE), publisher, MarketIngestMetrics())
        # No stream takes the candles: the ticks commit, the two candles stay queued.
        await js.delete_stream("MARKET")
        with pytest.raises(StoreUnavailable, match="publishing closed candles"):
            await handler.on_ticks(batch)
        assert await redis.hlen(Keys().outbox(s)) == 2
        # The runtime retries the same batch once the stream is back: the ticks are
        # skipped as applied, the queued candles are published, once.
        await apply(js, load_topology(STREAMS))
        await handler.on_ticks(batch)
        assert await candle_messages(js) == 2
        assert await redis.hlen(Keys().outbox(s)) == 0
        await handler.on_ticks(batch)
        assert await candle_messages(js) == 2


async def _connected(fleet: Fleet, client: str) -> bool:
    """Whether nats-server lists a connection of that client name (its /connz page)."""
    server = fleet.nats
    connz = await asyncio.to_thread(http_json, server.host, server.monitor_port, "/connz")
    conns = connz.get("connections") if isinstance(connz, dict) else None
    return any(c.get("name") == client for c in conns or [])


async def test_sigterm_while_the_worker_starts_stops_it_with_status_0(
    isolated_fleet: Fleet, tmp_path: Path
) -> None:
    """A stop that comes before the worker is ready (its Redis frozen, so the start-up
    waits on the store probe) ends the start-up cleanly: status 0, nothing consumed."""
    await start_servers(isolated_fleet)
    log = tmp_path / "worker.log"
    isolated_fleet.redis.pause()
    try:
        worker = await spawn(isolated_fleet, log)
        # Its consumer connection is up: the worker is inside its start-up, not yet ready.
        await wait_until(
            lambda: _connected(isolated_fleet, "market-ingest"),
            60,
            "the worker's NATS connection",
        )
        worker.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(worker.wait(), 30)
    finally:
        isolated_fleet.redis.resume()
    text = log.read_text()
    assert code == 0, text[-2000:]
    assert "worker_stopped_before_ready" in text
    assert "worker_ready" not in text
    assert "Traceback" not in text
