"""A subscription's own decoder on a real nats-server: its objects reach the handler in
stream order, what it refuses is dead-lettered with its reason, the rest is acked."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any, NamedTuple

from nats.js.client import JetStreamContext
from runtime_testkit.events import fill, publish_all
from runtime_testkit.worker import WORKER, settings_for

from fleet_events import DLQ_STREAM, TRADES_STREAM, TradeExecuted, decode_as
from fleet_runtime import deadletter as dl
from fleet_runtime.consume import Subscription
from fleet_runtime.delivery import Batch
from fleet_runtime.worker import serve
from fleet_testing.waiting import wait_until


class Quantity(NamedTuple):
    """What the test decoder makes of a fill."""

    id: str
    trade_id: str
    quantity: Decimal


def decode_quantity(raw: bytes) -> Quantity:
    """Decode a fill through the contract (its DecodeError on bad input)."""
    event = decode_as(raw, TradeExecuted)
    return Quantity(str(event.id), event.data.trade_id, event.data.quantity)


async def test_own_decoder_objects_reach_the_handler_and_refusals_are_dead_lettered(
    js: JetStreamContext, nats_url: str
) -> None:
    first, second = fill(1), fill(2)
    await publish_all(js, [first])
    await js.publish("trade.executed.bot-1", b"{not json")
    await publish_all(js, [second])

    seen: list[tuple[int, Any]] = []

    async def handle(batch: Batch[Any]) -> None:
        seen.extend((d.stream_seq, d.event) for d in batch)

    stop = asyncio.Event()
    task = asyncio.create_task(
        serve(
            worker=WORKER,
            settings=settings_for(nats_url),
            subscriptions=[Subscription(TRADES_STREAM, WORKER, handle, decode=decode_quantity)],
            stop=stop,
        )
    )
    try:
        await wait_until(lambda: len(seen) >= 2 or task.done(), 20, "two decoded fills")

        async def acked() -> bool:
            info = await js.consumer_info(TRADES_STREAM, WORKER)
            return info.ack_floor.stream_seq == 3

        await wait_until(acked, 10, "all three messages resolved")
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)

    assert seen == [
        (1, Quantity(str(first.id), "trade-1", Decimal("0.001"))),
        (3, Quantity(str(second.id), "trade-2", Decimal("0.002"))),
    ]
    assert (await js.stream_info(DLQ_STREAM)).state.messages == 1
    letter = await js.get_msg(DLQ_STREAM, 1)
    headers = letter.headers or {}
    assert letter.data == b"{not json"
    assert headers[dl.H_ERROR_CLASS] == "MalformedEvent"
    assert headers[dl.H_ERROR].startswith("not valid JSON")
    assert (headers[dl.H_SEQ], headers[dl.H_DELIVERIES]) == ("2", "1")
