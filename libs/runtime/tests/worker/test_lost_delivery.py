"""A delivery a live worker never receives (lost with its connection) is not acked by the
next ack of a later event.

The consumers ack with AckPolicy.ALL: an ack of stream sequence N acks every delivery
below N. A message the server sent while the worker's connection dropped is pending on
the server but unknown to the worker; without a guard, committing a later event acks it
and the server never redelivers it. Here the test takes that delivery itself (its own
pull request on the worker's durable while the worker is stopped), which is the same
thing as far as the worker can tell.
"""

from __future__ import annotations

import signal
from pathlib import Path

from nats.js.client import JetStreamContext
from runtime_testkit.events import fill, publish_all
from runtime_testkit.store import count_effects, stored_checkpoint
from runtime_testkit.worker import TOPOLOGY, WORKER, WorkerProcess, apply_test_topology

from fleet_events import TRADES_STREAM
from fleet_testing.waiting import wait_until

# A first redelivery after 4 s: the worker gets newer events well before the lost one.
SLOW_BACKOFF = TOPOLOGY.read_text().replace("backoff: [1s, 1s]", "backoff: [4s, 4s]")


async def test_a_delivery_lost_in_transit_is_applied_after_its_redelivery(
    js: JetStreamContext, nats_url: str, postgres_database: str, tmp_path: Path
) -> None:
    await apply_test_topology(js, SLOW_BACKOFF)
    worker = WorkerProcess(nats_url, postgres_database, tmp_path)
    worker.start()
    try:
        await worker.wait_ready(within_s=60)
        await publish_all(js, [fill(1)])
        await wait_until(lambda: _checkpoint(postgres_database, 1), 20, "event 1 applied")
        assert worker.proc is not None
        worker.proc.send_signal(signal.SIGSTOP)

        async def no_waiting_request() -> bool:
            return (await js.consumer_info(TRADES_STREAM, WORKER)).num_waiting == 0

        # The stopped worker's pull requests expire (5 s); then the next delivery of the
        # durable goes to whoever asks: the test, standing in for a dropped connection.
        await wait_until(no_waiting_request, 20, "the worker's pull requests expired")
        await publish_all(js, [fill(2)])
        thief = await js.pull_subscribe_bind(WORKER, TRADES_STREAM)
        [lost] = await thief.fetch(1, timeout=5)
        assert lost.metadata.sequence.stream == 2
        await publish_all(js, [fill(3)])
        worker.proc.send_signal(signal.SIGCONT)

        async def all_applied_and_acked() -> bool:
            info = await js.consumer_info(TRADES_STREAM, WORKER)
            settled = not info.num_pending and not info.num_ack_pending
            return settled and await _checkpoint(postgres_database, 3)

        await wait_until(all_applied_and_acked, 30, "every event applied and acked")
        assert await count_effects(postgres_database) == 3
    finally:
        if worker.proc is not None and worker.proc.poll() is None:
            worker.proc.send_signal(signal.SIGCONT)
        worker.close()


async def _checkpoint(dsn: str, seq: int) -> bool:
    return await stored_checkpoint(dsn, WORKER) == seq
