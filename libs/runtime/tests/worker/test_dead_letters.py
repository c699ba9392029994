"""Bad input on a real nats-server and PostgreSQL: dead-lettered, never blocking good events."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from nats.js.client import JetStreamContext
from runtime_testkit.events import fill, publish_all, total_quantity
from runtime_testkit.store import applied_order, read_totals, stored_checkpoint
from runtime_testkit.worker import WORKER, worker_task
from typer.testing import CliRunner

from fleet_events import DLQ_STREAM, encode
from fleet_runtime import deadletter as dl
from fleet_runtime.cli import app
from fleet_testing.waiting import wait_until


async def dlq_count(js: JetStreamContext) -> int:
    return (await js.stream_info(DLQ_STREAM)).state.messages


async def effects_are(dsn: str, n: int) -> bool:
    return (await read_totals(dsn))[0] == n


async def test_poison_event_is_dead_lettered_after_max_deliver_then_redriven_once(
    js: JetStreamContext, nats_url: str, postgres_database: str, tmp_path: Path
) -> None:
    flag = tmp_path / "poison-on"
    flag.touch()
    before = [fill(n) for n in range(1, 11)]
    poison = fill(11, trade_id="poison-11")
    after = [fill(n) for n in range(12, 22)]
    await publish_all(js, [*before, poison, *after])

    async with worker_task(nats_url, postgres_database, poison_flag=flag):
        await wait_until(lambda: dlq_count(js), 20, "the poison event in the DLQ")
        await wait_until(lambda: effects_are(postgres_database, 20), 10, "20 good effects")
        n, total, applied = await read_totals(postgres_database)
        assert (n, applied) == (20, 20)
        assert total == total_quantity([*before, *after])
        assert await stored_checkpoint(postgres_database, WORKER) == 21
        assert await dlq_count(js) == 1

        raw = await js.get_msg(DLQ_STREAM, 1)
        h = raw.headers or {}
        assert raw.subject == f"dlq.{WORKER}.trade.executed.bot-1"
        assert raw.data == encode(poison)
        assert h[dl.H_ERROR_CLASS] == "PoisonedEvent"
        assert h[dl.H_ERROR] == "poison trade poison-11 refused by the test handler"
        assert h[dl.H_DELIVERIES] == "3"
        assert (h[dl.H_STREAM], h[dl.H_SEQ]) == ("TRADES", "11")
        assert h[dl.H_EVENT_ID] == str(poison.id)

        # The fix ships: redrive the dead letter through the operator command.
        flag.unlink()
        result = await asyncio.to_thread(
            CliRunner().invoke, app, ["dlq", "redrive", "--all", "--server", nats_url]
        )
        assert result.exit_code == 0, result.output
        assert "redriven 1 dead letter" in result.output
        await wait_until(lambda: effects_are(postgres_database, 21), 10, "the redriven effect")

    n, total, applied = await read_totals(postgres_database)
    assert (n, applied) == (21, 21)
    assert total == total_quantity([*before, poison, *after])
    assert await dlq_count(js) == 0
    assert await stored_checkpoint(postgres_database, WORKER) == 22
    copy = await js.get_msg("TRADES", 22)
    assert copy.data == encode(poison)
    assert (copy.headers or {})["Nats-Msg-Id"] == f"{poison.id}:redrive:1"
    assert await applied_order(postgres_database) == [*range(1, 11), *range(12, 23)]


async def test_malformed_and_invalid_events_are_dead_lettered_at_once(
    js: JetStreamContext, nats_url: str, postgres_database: str
) -> None:
    good = [fill(n) for n in range(1, 5)]
    invalid = json.loads(encode(fill(99)))
    invalid["data"]["price"] = "-3"
    await publish_all(js, good[:2])
    await js.publish("trade.executed.bot-1", b"\x00not json{")
    await js.publish("trade.executed.bot-1", json.dumps(invalid).encode())
    await publish_all(js, good[2:])

    async with worker_task(nats_url, postgres_database):
        await wait_until(lambda: effects_are(postgres_database, 4), 15, "4 good effects")
        await wait_until(lambda: dlq_count(js), 5, "dead letters")
        await wait_until(lambda: stored_checkpoint(postgres_database, WORKER), 5, "the checkpoint")
        info = await js.consumer_info("TRADES", WORKER)

    n, total, applied = await read_totals(postgres_database)
    assert (n, applied) == (4, 4)
    assert total == total_quantity(good)
    assert await stored_checkpoint(postgres_database, WORKER) == 6
    assert await applied_order(postgres_database) == [1, 2, 5, 6]
    assert await dlq_count(js) == 2
    assert info.num_redelivered == 0

    malformed = await js.get_msg(DLQ_STREAM, 1)
    mh = malformed.headers or {}
    assert malformed.data == b"\x00not json{"
    assert mh[dl.H_ERROR_CLASS] == "MalformedEvent"
    assert mh[dl.H_DELIVERIES] == "1"
    assert mh[dl.H_SEQ] == "3"
    assert dl.H_EVENT_ID not in mh

    bad = await js.get_msg(DLQ_STREAM, 2)
    bh = bad.headers or {}
    assert bh[dl.H_ERROR_CLASS] == "InvalidEvent"
    assert bh[dl.H_ERROR].startswith("data.price:")
    assert bh[dl.H_DELIVERIES] == "1"
    assert bh[dl.H_SEQ] == "4"
