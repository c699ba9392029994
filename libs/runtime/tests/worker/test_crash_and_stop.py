"""The worker as a real process: kill -9 mid-batch, SIGTERM under load, restart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from nats.js.client import JetStreamContext
from runtime_testkit.events import fills, publish_all, total_quantity
from runtime_testkit.store import (
    PgTestStore,
    applied_order,
    count_effects,
    read_totals,
    stored_checkpoint,
)
from runtime_testkit.worker import WORKER, WorkerProcess

from fleet_events import DLQ_STREAM
from fleet_testing.waiting import wait_until

TOTAL = 20_000


@pytest.fixture
def worker_process(
    nats_url: str, postgres_database: str, tmp_path: Path
) -> Iterator[WorkerProcess]:
    proc = WorkerProcess(nats_url, postgres_database, tmp_path, batch_size=200)
    try:
        yield proc
    finally:
        proc.close()


async def at_least(dsn: str, n: int) -> bool:
    return await count_effects(dsn) >= n


async def assert_all_once(js: JetStreamContext, dsn: str, events_total: object) -> None:
    n, total, applied = await read_totals(dsn)
    assert n == TOTAL
    assert total == events_total
    # One write per event: no batch was applied twice, whatever was redelivered.
    assert applied == TOTAL
    assert await stored_checkpoint(dsn, WORKER) == TOTAL
    assert await applied_order(dsn) == list(range(1, TOTAL + 1))
    assert (await js.stream_info(DLQ_STREAM)).state.messages == 0


@pytest.mark.slow
async def test_kill_9_mid_batch_repeatedly_applies_every_event_once(
    js: JetStreamContext, postgres_database: str, worker_process: WorkerProcess
) -> None:
    await PgTestStore.create_schema(postgres_database)
    events = fills(TOTAL, bots=7)
    await publish_all(js, events)

    killed_at: list[int] = []
    for threshold in (1_000, 4_000, 8_000, 12_000, 16_000):
        worker_process.start()
        await worker_process.wait_ready()
        await wait_until(
            lambda t=threshold: at_least(postgres_database, t), 60, f"{threshold} effects", 0.01
        )
        worker_process.kill()
        killed_at.append(await count_effects(postgres_database))

    # Every kill landed while events were still being applied.
    assert len(killed_at) == 5
    assert all(n < TOTAL for n in killed_at), killed_at
    assert killed_at == sorted(killed_at)

    worker_process.start()
    await worker_process.wait_ready()
    await wait_until(lambda: at_least(postgres_database, TOTAL), 90, "all effects")
    await wait_until(lambda: _acked_up_to(js, TOTAL), 10, "the consumer to ack everything")
    await assert_all_once(js, postgres_database, total_quantity(events))


async def _acked_up_to(js: JetStreamContext, seq: int) -> bool:
    info = await js.consumer_info("TRADES", WORKER)
    return info.ack_floor.stream_seq == seq and info.num_ack_pending == 0


@pytest.mark.slow
async def test_sigterm_under_load_exits_0_and_restart_redoes_nothing(
    js: JetStreamContext, postgres_database: str, worker_process: WorkerProcess
) -> None:
    await PgTestStore.create_schema(postgres_database)
    events = fills(TOTAL, bots=3)
    await publish_all(js, events)

    worker_process.start()
    await worker_process.wait_ready()
    await wait_until(lambda: at_least(postgres_database, 3_000), 60, "3000 effects", 0.01)
    worker_process.terminate()
    started = time.monotonic()
    proc = worker_process.proc
    assert proc is not None
    code = await asyncio.to_thread(proc.wait, 15)
    assert code == 0
    assert time.monotonic() - started < 12  # shutdown_timeout_s is 10

    stopped_at = await count_effects(postgres_database)
    assert 3_000 <= stopped_at < TOTAL
    # A clean stop acked exactly what it committed, no more, no less.
    info = await js.consumer_info("TRADES", WORKER)
    assert info.ack_floor.stream_seq == stopped_at
    assert await stored_checkpoint(postgres_database, WORKER) == stopped_at

    worker_process.start()
    await worker_process.wait_ready()
    await wait_until(lambda: at_least(postgres_database, TOTAL), 60, "all effects")
    await wait_until(lambda: _acked_up_to(js, TOTAL), 10, "the consumer to ack everything")
    await assert_all_once(js, postgres_database, total_quantity(events))
