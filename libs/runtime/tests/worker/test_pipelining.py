"""The two stages on a real nats-server: batch N+1 is decoded while batch N's handler call
is in flight, but handed to the handler only after N returned and was acked."""

from __future__ import annotations

import asyncio
from typing import Any

from nats.js.client import JetStreamContext
from runtime_testkit.events import fills, publish_all
from runtime_testkit.worker import WORKER, settings_for

from fleet_events import TRADES_STREAM, Event, TradeExecuted, decode_as
from fleet_runtime.consume import Subscription
from fleet_runtime.delivery import Batch
from fleet_runtime.worker import serve
from fleet_testing.waiting import wait_until

BATCH = 5


async def test_the_next_batch_is_decoded_during_a_commit_and_handled_after_its_ack(
    js: JetStreamContext, nats_url: str
) -> None:
    events = fills(3 * BATCH)
    await publish_all(js, events)
    decoded: list[str] = []
    calls: list[list[int]] = []
    acked_before_call: list[bool] = []
    last_msgs: list[Any] = []
    release = asyncio.Event()

    def decode_fill(raw: bytes) -> Event[TradeExecuted]:
        event = decode_as(raw, TradeExecuted)
        decoded.append(event.data.trade_id)
        return event

    async def handle(batch: Batch[Any]) -> None:
        # With ack policy all, a batch is acked by an ack of its last message.
        acked_before_call.append(all(m._ackd for m in last_msgs))
        calls.append([d.stream_seq for d in batch])
        last_msgs.append(batch.deliveries[-1].msg)
        if len(calls) == 1:
            # The first commit stays in flight until the test has seen the next batch
            # decoded behind it.
            await release.wait()

    stop = asyncio.Event()
    task = asyncio.create_task(
        serve(
            worker=WORKER,
            settings=settings_for(nats_url, batch_size=BATCH),
            subscriptions=[Subscription(TRADES_STREAM, WORKER, handle, decode=decode_fill)],
            stop=stop,
        )
    )
    try:
        await wait_until(lambda: len(decoded) >= 2 * BATCH or task.done(), 20, "batch 2 decoded")
        # Decoded, not handed over: the handler still holds batch 1, nothing is acked, and
        # no third batch is decoded (at most one batch waits behind the commit).
        await asyncio.sleep(0.3)
        assert calls == [[1, 2, 3, 4, 5]]
        assert len(decoded) == 2 * BATCH
        info = await js.consumer_info(TRADES_STREAM, WORKER)
        assert info.ack_floor.stream_seq == 0
        release.set()

        async def all_acked() -> bool:
            info = await js.consumer_info(TRADES_STREAM, WORKER)
            return info.ack_floor.stream_seq == 3 * BATCH

        await wait_until(all_acked, 10, "every batch acked")
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)

    assert calls == [[1, 2, 3, 4, 5], [6, 7, 8, 9, 10], [11, 12, 13, 14, 15]]
    # Each batch reached the handler only once the one before it was acked.
    assert acked_before_call == [True, True, True]
    assert all(m._ackd for m in last_msgs)
    assert decoded == [e.data.trade_id for e in events]
