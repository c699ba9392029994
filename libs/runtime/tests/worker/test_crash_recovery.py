"""After a kill -9: the orphans come back after the short first ack wait and are committed
in growing groups; a live worker's slow batch is never redelivered for all that."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from nats.js.client import JetStreamContext
from runtime_testkit.events import fills, publish_all, total_quantity
from runtime_testkit.store import PgTestStore, applied_order, count_effects, read_totals
from runtime_testkit.worker import TOPOLOGY, WORKER, WorkerProcess, apply_test_topology

from fleet_events import TRADES_STREAM
from fleet_runtime.consume import Subscription
from fleet_runtime.delivery import Batch
from fleet_runtime.orphans import may_group, orphan_groups
from fleet_runtime.settings import WorkerSettings
from fleet_runtime.topology import load_topology
from fleet_runtime.worker import serve
from fleet_testing.waiting import wait_until

REPO = Path(__file__).resolve().parents[4]
# One second for the first delivery, an hour for every later one.
SHORT_THEN_LONG = TOPOLOGY.read_text().replace("backoff: [1s, 1s]", "backoff: [1s, 1h]")


def _sizes(count: int, largest: int) -> list[int]:
    sizes, size, left = [], 1, count
    while left > 0:
        sizes.append(min(size, left))
        left -= size
        size = min(size * 2, largest)
    return sizes


def test_orphans_are_grouped_while_every_one_has_a_delivery_to_spare() -> None:
    assert may_group([2, 2, 2], max_deliver=3)
    assert may_group([2], max_deliver=-1)
    assert may_group([2, 3, 7], max_deliver=8)  # came back before, a delivery to spare
    assert not may_group([2, 8], max_deliver=8)  # one on its last delivery: one at a time
    assert not may_group([2, 2], max_deliver=2)  # no delivery left after a crash
    assert not may_group([], max_deliver=5)
    msgs: list[Any] = list(range(20))
    assert [len(g) for g in orphan_groups(msgs, grouped=True, largest=4)] == [1, 2, 4, 4, 4, 4, 1]
    assert [len(g) for g in orphan_groups(msgs, grouped=False, largest=4)] == [1] * 20
    assert [m for g in orphan_groups(msgs, grouped=True, largest=8) for m in g] == msgs


def test_every_ordered_consumer_gives_a_dead_process_events_back_within_2s() -> None:
    topology = load_topology(REPO / "streams.yaml")
    for durable in topology.durables():
        config = durable.consumer_config()
        if config.ack_policy is None or config.ack_policy.value != "all":
            continue
        waits = list(config.backoff or [config.ack_wait])
        assert waits[0] is not None
        assert waits[0] <= 2.0, (durable, waits)
        assert len(waits) > 1, durable
        # The second redelivery falls due after the stalled process's pull requests expired
        # (PullSource: 5 s): a stall costs an event one extra delivery at most.
        assert all(w is not None and w >= 5.0 for w in waits[1:]), (durable, waits)
        # The crash budget: an event outlives that many processes killed holding it.
        assert config.max_deliver is not None, durable
        assert config.max_deliver >= 8, durable


async def test_a_slow_batch_is_kept_alive_past_the_first_ack_wait(
    js: JetStreamContext, nats_url: str
) -> None:
    await apply_test_topology(js, SHORT_THEN_LONG)
    await publish_all(js, fills(30, bots=3))
    seen: list[tuple[int, int]] = []
    slow_once = [True]

    async def handle(batch: Batch[Any]) -> None:
        if slow_once.pop() if slow_once else False:
            # Three and a half first ack waits, with more batches buffered behind it.
            await asyncio.sleep(3.5)
        seen.extend((d.stream_seq, d.num_delivered) for d in batch.deliveries)

    stop = asyncio.Event()
    settings = WorkerSettings(nats_url=nats_url, batch_size=10, shutdown_timeout_s=10)
    task = asyncio.create_task(
        serve(
            worker=WORKER,
            settings=settings,
            subscriptions=[Subscription(TRADES_STREAM, WORKER, handle)],
            stop=stop,
        )
    )
    try:
        await wait_until(lambda: len(seen) >= 30 or task.done(), 30, "30 events handled")
        info = await js.consumer_info(TRADES_STREAM, WORKER)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    assert [seq for seq, _ in seen] == list(range(1, 31))
    assert {n for _, n in seen} == {1}
    assert info.num_redelivered == 0


def _orphan_lines(log: Path) -> list[dict[str, Any]]:
    lines = [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]
    return [x for x in lines if x.get("event") == "orphans_committed"]


async def test_after_a_kill_the_orphans_come_back_and_are_committed_in_growing_groups(
    js: JetStreamContext, nats_url: str, postgres_database: str, tmp_path: Path
) -> None:
    total = 4000
    await apply_test_topology(js, SHORT_THEN_LONG)
    await PgTestStore.create_schema(postgres_database)
    events = fills(total, bots=5)
    await publish_all(js, events)
    worker = WorkerProcess(nats_url, postgres_database, tmp_path, batch_size=200)
    try:
        worker.start()
        await worker.wait_ready()
        await wait_until(lambda: _at_least(postgres_database, 400), 60, "400 effects", 0.01)
        worker.kill()
        held = (await js.consumer_info(TRADES_STREAM, WORKER)).num_ack_pending
        assert await count_effects(postgres_database) < total, "the kill must land mid-stream"
        worker.start()
        await worker.wait_ready()
        # With the later backoff of an hour, finishing at all shows the orphans came back
        # after the first one.
        await wait_until(lambda: _at_least(postgres_database, total), 60, "all effects")
        worker.terminate()
        assert worker.proc is not None
        assert await asyncio.to_thread(worker.proc.wait, 30) == 0
    finally:
        worker.close()
    n, quantity, applied = await read_totals(postgres_database)
    assert (n, applied) == (total, total)
    assert quantity == total_quantity(events)
    assert await applied_order(postgres_database) == list(range(1, total + 1))
    [line] = _orphan_lines(tmp_path / "worker-2.log")
    assert held > 1
    assert line["grouped"] is True
    assert line["count"] > 1
    assert line["groups"] == len(_sizes(line["count"], 200))


async def _at_least(dsn: str, n: int) -> bool:
    return await count_effects(dsn) >= n
