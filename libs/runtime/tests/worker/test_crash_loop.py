"""A crash loop: an event that kills the worker process every time it is handled.

After a crash the worker commits the events the dead process held one at a time (see
``fleet_runtime.orphans``): the events before the killer are applied once, the killer and
the events after it reach max_deliver and the DLQ, the killer lowest, and a redrive after
the fix applies them once.
"""

from __future__ import annotations

import asyncio
import random
import subprocess
from pathlib import Path

from nats.js.client import JetStreamContext
from runtime_testkit.events import fill, fills, publish_all, total_quantity
from runtime_testkit.store import PgTestStore, applied_order, count_effects, read_totals
from runtime_testkit.worker import (
    TOPOLOGY,
    WORKER,
    WorkerProcess,
    apply_test_topology,
    worker_task,
)
from typer.testing import CliRunner

from fleet_events import DLQ_STREAM, TRADES_STREAM, encode
from fleet_runtime import deadletter as dl
from fleet_runtime.cli import app
from fleet_runtime.exhausted import ERROR_CLASS
from fleet_testing.waiting import wait_until

TOTAL = 40
KILLER = 13
MAX_DELIVER = 3  # runtime_testkit/topology.yaml


async def _dead(js: JetStreamContext) -> int:
    return (await js.stream_info(DLQ_STREAM)).state.messages


async def _died_or_settled(proc: subprocess.Popen[bytes], js: JetStreamContext, dsn: str) -> bool:
    return proc.poll() is not None or await _settled(js, dsn)


async def _settled(js: JetStreamContext, dsn: str) -> bool:
    return await _dead(js) >= TOTAL - KILLER + 1 and (await read_totals(dsn))[0] >= KILLER - 1


async def test_the_events_before_one_that_kills_the_process_are_applied(
    js: JetStreamContext, nats_url: str, postgres_database: str, tmp_path: Path
) -> None:
    await PgTestStore.create_schema(postgres_database)
    events = [fill(n, trade_id="killer" if n == KILLER else None) for n in range(1, TOTAL + 1)]
    await publish_all(js, events)
    worker = WorkerProcess(nats_url, postgres_database, tmp_path, batch_size=200, killer="killer")
    crashes = 0
    try:
        while True:
            assert crashes <= MAX_DELIVER, "still crashing"
            worker.start()
            proc = worker.proc
            assert proc is not None

            await wait_until(
                lambda p=proc: _died_or_settled(p, js, postgres_database),
                60,
                "the worker to die or the stream to settle",
            )
            if proc.poll() is None:
                break
            assert proc.returncode == 137
            crashes += 1
        worker.terminate()
        assert await asyncio.to_thread(proc.wait, 30) == 0
    finally:
        worker.close()

    # The first process died holding all 40, the next two holding the killer: 1..12 were
    # committed one at a time before it, each once.
    assert crashes == MAX_DELIVER
    assert await applied_order(postgres_database) == list(range(1, KILLER))
    info = await js.stream_info(DLQ_STREAM)
    assert info.state.messages == TOTAL - KILLER + 1
    letters = [await js.get_msg(DLQ_STREAM, s) for s in range(1, info.state.messages + 1)]
    seqs = sorted(int((m.headers or {})[dl.H_SEQ]) for m in letters)
    assert seqs == list(range(KILLER, TOTAL + 1))
    killer = next(m for m in letters if (m.headers or {})[dl.H_SEQ] == str(KILLER))
    assert killer.data == encode(events[KILLER - 1])
    assert {(m.headers or {})[dl.H_ERROR_CLASS] for m in letters} == {ERROR_CLASS}
    assert {(m.headers or {})[dl.H_STREAM] for m in letters} == {TRADES_STREAM}

    # After the fix (a worker without the killer), a redrive applies them once.
    result = await asyncio.to_thread(
        CliRunner().invoke, app, ["dlq", "redrive", "--all", "--server", nats_url]
    )
    assert result.exit_code == 0, result.output
    async with worker_task(nats_url, postgres_database):
        await wait_until(
            lambda: _effects_are(postgres_database, TOTAL), 30, "every event applied once"
        )
    n, total, applied = await read_totals(postgres_database)
    assert (n, applied) == (TOTAL, TOTAL)
    assert total == total_quantity(events)


async def _effects_are(dsn: str, n: int) -> bool:
    return (await read_totals(dsn))[0] == n


# The fleet's own budget (streams.yaml gives every ordered consumer at least this many
# deliveries) with the test topology's one-second waits.
LOOP_MAX_DELIVER = 8
LOOP_TOPOLOGY = TOPOLOGY.read_text().replace("max_deliver: 3", f"max_deliver: {LOOP_MAX_DELIVER}")


async def test_a_worker_killed_faster_than_it_recovers_loses_and_dead_letters_nothing(
    js: JetStreamContext, nats_url: str, postgres_database: str, tmp_path: Path
) -> None:
    """No event kills the process; it is killed anyway, as many times as max_deliver,
    each time within half a second of its first commit (while it commits what the
    previous processes held, long before it caught up). Every event must end applied
    once, in order."""
    # A backlog at every start, whatever the machine's speed: 12,000 events first and
    # 8,000 more before each restart (a fast worker caught up a fixed 24,000 within four
    # lives, and the later kills found nothing in flight).
    first, more = 12000, 8000
    total = first + LOOP_MAX_DELIVER * more
    await apply_test_topology(js, LOOP_TOPOLOGY)
    await PgTestStore.create_schema(postgres_database)
    events = fills(total, bots=4)
    await publish_all(js, events[:first])
    published = first
    worker = WorkerProcess(nats_url, postgres_database, tmp_path, batch_size=200)
    rng = random.Random(7)
    held: list[int] = []
    try:
        for _ in range(LOOP_MAX_DELIVER):
            before = await count_effects(postgres_database)
            worker.start()
            await worker.wait_ready()
            await wait_until(
                lambda b=before: _at_least(postgres_database, min(b + 1, total)),
                30,
                "a commit (or nothing left)",
                0.01,
            )
            await asyncio.sleep(rng.uniform(0.0, 0.5))
            worker.kill()
            info = await js.consumer_info(TRADES_STREAM, WORKER)
            held.append(info.num_ack_pending or 0)
            await publish_all(js, events[published : published + more])
            published += more
        worker.start()
        await worker.wait_ready()
        # Settled: every event applied or dead-lettered (given up events are swept within 5 s).
        await wait_until(
            lambda: _applied_or_dead(js, postgres_database, total), 120, "every event settled"
        )
        worker.terminate()
        assert worker.proc is not None
        assert await asyncio.to_thread(worker.proc.wait, 30) == 0
    finally:
        worker.close()
    # The kills landed mid-stream and left deliveries behind (a kill may still find one
    # life's batches all acked, rarely).
    assert sum(1 for h in held if h) >= LOOP_MAX_DELIVER - 2, held
    assert max(held) > 200, held
    assert (await _dead(js), await count_effects(postgres_database)) == (0, total)
    n, quantity, applied = await read_totals(postgres_database)
    assert (n, applied) == (total, total)
    assert quantity == total_quantity(events)
    assert await applied_order(postgres_database) == list(range(1, total + 1))


async def _applied_or_dead(js: JetStreamContext, dsn: str, n: int) -> bool:
    return await count_effects(dsn) + await _dead(js) >= n


async def _at_least(dsn: str, n: int) -> bool:
    return await count_effects(dsn) >= n
