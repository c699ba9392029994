"""Duplicates inside and outside the stream's window, retried publishes, and stream order."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from nats.js.client import JetStreamContext
from runtime_testkit.events import fill, fills, publish_all
from runtime_testkit.store import applied_order, read_totals, stored_checkpoint
from runtime_testkit.worker import WORKER, worker_task

from fleet_events import encode, subject_for
from fleet_runtime.publisher import EventPublisher, PublishFailed
from fleet_testing import Fleet
from fleet_testing.waiting import observe, wait_until


async def _checkpoint_is(dsn: str, seq: int) -> bool:
    return await stored_checkpoint(dsn, WORKER) == seq


async def test_same_event_twice_inside_and_outside_the_window_has_one_effect(
    js: JetStreamContext, nats_url: str, postgres_database: str
) -> None:
    event = fill(7)
    publisher = EventPublisher(js)
    first = await publisher.publish(event)
    again = await publisher.publish(event)
    assert (first.seq, first.duplicate) == (1, None)
    assert (again.seq, again.duplicate) == (1, True)
    # Outside the window (as the stream sees it: another message id), same event id.
    late = await publisher.publish_raw(subject_for(event), encode(event), f"{event.id}:late")
    assert (late.seq, late.duplicate) == (2, None)
    other = fill(8)
    await publisher.publish(other)

    async with worker_task(nats_url, postgres_database):
        await wait_until(lambda: _checkpoint_is(postgres_database, 3), 15, "checkpoint 3")

    n, total, applied = await read_totals(postgres_database)
    assert n == 2
    assert total == Decimal("0.015")
    # The handler saw both copies (seq 1 and 2); the event id key kept one effect.
    assert applied == 3
    assert (await js.stream_info("TRADES")).state.messages == 3


async def test_retried_publish_with_the_same_msg_id_is_stored_once(
    isolated_fleet: Fleet, js: JetStreamContext
) -> None:
    event = fill(1)
    publisher = EventPublisher(js, timeout_s=0.5, attempts=20, backoff_s=0.1, max_backoff_s=0.2)
    server = isolated_fleet.nats
    server.pause()
    try:
        task = asyncio.create_task(publisher.publish(event))
        # Long enough for several attempts to time out and be sent again.
        await observe(task.done, 1.5)
        assert not task.done()
    finally:
        server.resume()
    ack = await task
    assert ack.seq == 1
    info = await js.stream_info("TRADES")
    assert info.state.messages == 1
    assert (await publisher.publish(event)).duplicate is True


async def test_events_are_committed_in_stream_order(
    js: JetStreamContext, nats_url: str, postgres_database: str
) -> None:
    events = fills(3_000, bots=9)
    await publish_all(js, events)
    async with worker_task(nats_url, postgres_database, batch_size=128):
        await wait_until(lambda: _checkpoint_is(postgres_database, 3_000), 30, "checkpoint 3000")
    assert await applied_order(postgres_database) == list(range(1, 3_001))


async def test_messages_published_together_are_stored_in_order_and_a_failure_says_how_many(
    js: JetStreamContext,
) -> None:
    events = [fill(n) for n in range(1, 5)]
    raw = [(subject_for(e), encode(e), str(e.id)) for e in events]
    publisher = EventPublisher(js, timeout_s=0.5, attempts=2, backoff_s=0.05)
    acks = await publisher.publish_raw_many(raw[:3])
    assert [a.seq for a in acks] == [1, 2, 3]
    # Again, with a message no stream takes in the middle: the first is confirmed (a
    # duplicate now), the second fails after its retries, and the error says one.
    nowhere = ("nowhere.at.all", b"{}", "nowhere-1")
    with pytest.raises(PublishFailed) as failed:
        await publisher.publish_raw_many([raw[0], nowhere, raw[3]])
    assert failed.value.stored == 1
    stored = await js.stream_info("TRADES")
    # The message after the failed one was sent with it and may be stored: never twice.
    assert stored.state.messages in (3, 4)
    again = await publisher.publish_raw_many(raw)
    assert [a.seq for a in again][:3] == [1, 2, 3]
    assert (await js.stream_info("TRADES")).state.messages == 4
