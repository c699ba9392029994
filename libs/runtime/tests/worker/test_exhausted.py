"""Events the server gives up on (max_deliver reached without any answer) reach the DLQ.

A process that dies holding events never acks, naks or dead-letters them. To the server,
a consumer client that receives messages and then goes silent is exactly that, so the
crash loop is played by a bare client pulling the worker's durable and never answering.
"""

from __future__ import annotations

import asyncio
import json

import nats
from nats.aio.msg import Msg
from nats.js.client import JetStreamContext
from runtime_testkit.events import fill, publish_all, total_quantity
from runtime_testkit.store import read_totals, stored_checkpoint
from runtime_testkit.worker import WORKER, worker_task
from typer.testing import CliRunner

from fleet_events import DLQ_STREAM, TRADES_STREAM, encode
from fleet_runtime import deadletter as dl
from fleet_runtime.cli import app
from fleet_runtime.exhausted import (
    ERROR_CLASS,
    EXHAUSTED_STREAM,
    ExhaustedSweeper,
    advisory_subject,
)
from fleet_testing.waiting import wait_until

MAX_DELIVER = 3  # runtime_testkit/topology.yaml, backoff [1s, 1s]
GIVEN_UP = 3


async def die_holding(js: JetStreamContext, nats_url: str, n: int) -> None:
    """Receive the durable's first ``n`` messages MAX_DELIVER times, answering nothing."""
    config = (await js.consumer_info(TRADES_STREAM, WORKER)).config
    # With no room for more unacked messages the server sends nothing new: each fetch
    # waits for the redeliveries, which come once the ack wait (1 s) has run out.
    # add_consumer with an existing durable name updates it.
    await js.add_consumer(TRADES_STREAM, config.evolve(max_ack_pending=n))
    nc = await nats.connect(nats_url)
    try:
        sub = await nc.jetstream().pull_subscribe_bind(WORKER, TRADES_STREAM)
        for delivery in range(1, MAX_DELIVER + 1):
            msgs: list[Msg] = []
            while len(msgs) < n:
                msgs += await sub.fetch(n - len(msgs), timeout=10)
            assert [m.metadata.num_delivered for m in msgs] == [delivery] * n
            assert [m.metadata.sequence.stream for m in msgs] == list(range(1, n + 1))
    finally:
        await nc.close()
    await js.add_consumer(TRADES_STREAM, config)


async def dlq_count(js: JetStreamContext) -> int:
    return (await js.stream_info(DLQ_STREAM)).state.messages


async def test_events_given_up_after_a_crash_loop_are_dead_lettered_then_redriven(
    js: JetStreamContext, nats_url: str, postgres_database: str
) -> None:
    events = [fill(n) for n in range(1, 11)]
    await publish_all(js, events)
    await die_holding(js, nats_url, GIVEN_UP)

    async with worker_task(nats_url, postgres_database):
        # Its first pull finds the three past max_deliver: the server gives them up and
        # says so in advisories, which the worker turns into dead letters.
        await wait_until(
            lambda: _at_least(dlq_count(js), GIVEN_UP), 30, "three dead letters for the given-up"
        )
        await wait_until(
            lambda: _effects_are(postgres_database, 7), 20, "the seven other events applied"
        )
        info = await js.consumer_info(TRADES_STREAM, WORKER)
        assert (info.num_pending, info.num_ack_pending) == (0, 0)
        assert (await js.stream_info(EXHAUSTED_STREAM)).state.messages == 0
        assert await dlq_count(js) == GIVEN_UP
        for dlq_seq, event in enumerate(events[:GIVEN_UP], start=1):
            raw = await js.get_msg(DLQ_STREAM, dlq_seq)
            h = raw.headers or {}
            assert raw.data == encode(event)
            assert raw.subject == f"dlq.{WORKER}.trade.executed.bot-1"
            assert h[dl.H_ERROR_CLASS] == ERROR_CLASS
            assert "stopped redelivering it after 3 deliveries" in h[dl.H_ERROR]
            assert (h[dl.H_STREAM], h[dl.H_SEQ]) == (TRADES_STREAM, str(dlq_seq))
            assert h[dl.H_DELIVERIES] == str(MAX_DELIVER)
            assert h[dl.H_EVENT_ID] == str(event.id)

        result = await asyncio.to_thread(
            CliRunner().invoke, app, ["dlq", "redrive", "--all", "--server", nats_url]
        )
        assert result.exit_code == 0, result.output
        assert f"redriven {GIVEN_UP} dead letters" in result.output
        await wait_until(lambda: _effects_are(postgres_database, 10), 20, "every event applied")

    n, total, applied = await read_totals(postgres_database)
    assert (n, applied) == (10, 10)
    assert total == total_quantity(events)
    assert await dlq_count(js) == 0
    assert await stored_checkpoint(postgres_database, WORKER) == 10 + GIVEN_UP


async def _effects_are(dsn: str, n: int) -> bool:
    return (await read_totals(dsn))[0] == n


async def _at_least(count: object, n: int) -> bool:
    assert asyncio.iscoroutine(count)
    return bool(await count >= n)


async def test_a_sweep_skips_unreadable_advisories_and_records_originals_already_gone(
    js: JetStreamContext,
) -> None:
    events = [fill(1), fill(2)]
    await publish_all(js, events)
    subject = advisory_subject(TRADES_STREAM, WORKER)

    def advisory(seq: int) -> bytes:
        body = {"stream": TRADES_STREAM, "consumer": WORKER, "stream_seq": seq, "deliveries": 3}
        return json.dumps(body).encode()

    await js.publish(subject, b"not an advisory")
    await js.publish(subject, advisory(2))
    await js.publish(subject, advisory(99))  # beyond the stream: gone by its limits

    sweeper = ExhaustedSweeper(js, worker=WORKER, stream=TRADES_STREAM, durable=WORKER)
    letters = await sweeper.sweep()

    assert [(x.seq, x.subject, x.data) for x in letters] == [
        (2, "trade.executed.bot-1", encode(events[1])),
        (99, f"gone.{TRADES_STREAM}.99", b""),
    ]
    assert letters[0].event_id == str(events[1].id)
    assert "no longer in the stream" in letters[1].error
    assert await dlq_count(js) == 2
    # The unreadable one stays for a human; a second sweep doubles nothing.
    assert (await js.stream_info(EXHAUSTED_STREAM)).state.messages == 1
    assert await sweeper.sweep() == []
    assert await dlq_count(js) == 2
