"""PostgreSQL stopped under load: the worker pauses, reports not ready, and resumes by itself."""

from __future__ import annotations

import json

from nats.js.client import JetStreamContext
from runtime_testkit.events import fills, publish_all, total_quantity
from runtime_testkit.health import http_status
from runtime_testkit.store import (
    PgTestStore,
    applied_order,
    count_effects,
    read_totals,
    stored_checkpoint,
)
from runtime_testkit.worker import WORKER, worker_task

from fleet_events import DLQ_STREAM, encode
from fleet_testing import Fleet
from fleet_testing.waiting import observe, wait_until

OUTAGE_S = 10.0


async def test_store_outage_pauses_without_dead_letters_and_recovers(
    isolated_fleet: Fleet, js: JetStreamContext, nats_url: str
) -> None:
    pg = isolated_fleet.postgres
    dsn = pg.dsn()
    await PgTestStore.create_schema(dsn)
    first, second = fills(3_000, bots=5), fills(3_000, start=3_001, bots=5)
    await publish_all(js, first)

    async with worker_task(nats_url, dsn, batch_size=100) as worker:
        assert await http_status(worker.port) == 200
        await wait_until(lambda: _at_least(dsn, 500), 30, "500 effects")
        await pg.astop()
        await publish_all(js, second)
        await wait_until(lambda: _status_is(worker.port, 503), 15, "/readyz 503 during the outage")
        during = await observe(lambda: http_status(worker.port), OUTAGE_S)
        assert set(during) == {503}
        # Held messages are kept in progress: none reached max_deliver (3 deliveries, 1 s apart).
        assert (await js.stream_info(DLQ_STREAM)).state.messages == 0

        await pg.astart()
        await wait_until(lambda: _status_is(worker.port, 200), 30, "/readyz 200 again")
        await wait_until(lambda: _at_least(dsn, 6_000), 60, "every effect")

    n, total, applied = await read_totals(dsn)
    assert (n, applied) == (6_000, 6_000)
    assert total == total_quantity([*first, *second])
    assert await stored_checkpoint(dsn, WORKER) == 6_000
    assert await applied_order(dsn) == list(range(1, 6_001))
    assert (await js.stream_info(DLQ_STREAM)).state.messages == 0


async def test_bad_event_waits_for_earlier_good_ones_while_the_store_is_down(
    isolated_fleet: Fleet, js: JetStreamContext, nats_url: str
) -> None:
    """With ack policy all, a term acks everything below it: it must not precede a commit."""
    pg = isolated_fleet.postgres
    dsn = pg.dsn()
    await PgTestStore.create_schema(dsn)
    good = fills(4)
    await publish_all(js, good[:3])
    await js.publish("trade.executed.bot-0", b"{not json")
    await publish_all(js, good[3:])
    await pg.astop()

    async with worker_task(nats_url, dsn, probe_store=False) as worker:
        await wait_until(lambda: _status_is(worker.port, 503), 15, "/readyz 503")
        info = await js.consumer_info("TRADES", WORKER)
        assert info.ack_floor.stream_seq == 0
        assert (await js.stream_info(DLQ_STREAM)).state.messages == 0

        await pg.astart()
        await wait_until(lambda: _at_least(dsn, 4), 30, "the good effects")
        await wait_until(lambda: _dlq_has(js, 1), 10, "the dead letter")

    assert await applied_order(dsn) == [1, 2, 3, 5]
    assert await stored_checkpoint(dsn, WORKER) == 5
    letter = await js.get_msg(DLQ_STREAM, 1)
    assert letter.data == b"{not json"
    assert json.loads(encode(good[0]))["id"] == str(good[0].id)


async def _at_least(dsn: str, n: int) -> bool:
    return await count_effects(dsn) >= n


async def _status_is(port: int, status: int) -> bool:
    return await http_status(port) == status


async def _dlq_has(js: JetStreamContext, n: int) -> bool:
    return (await js.stream_info(DLQ_STREAM)).state.messages == n
