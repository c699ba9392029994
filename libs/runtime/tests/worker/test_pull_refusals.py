"""A pull request the server refuses at once (409, 503) is not re-sent at once.

After a stream leader change a worker held hundreds of stale pull requests on the
server; each new one was refused with 409 "Exceeded MaxWaiting", and re-requesting on
every refusal made a busy loop of tens of thousands of requests a second.
"""

from __future__ import annotations

import nats
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig

from fleet_runtime.pull import PullSource
from fleet_testing.waiting import observe, wait_until


async def test_refused_requests_are_retried_about_once_a_second_and_pulling_goes_on(
    nats_url: str,
) -> None:
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name="REFUSALS", subjects=["refusals.>"]))
    # One waiting request at most: the second of the source's two is refused at once.
    await js.add_consumer(
        "REFUSALS",
        ConsumerConfig(durable_name="d", ack_policy=AckPolicy.EXPLICIT, max_waiting=1),
    )
    requests: list[Msg] = []

    async def seen(msg: Msg) -> None:
        requests.append(msg)

    watcher = await nc.subscribe("$JS.API.CONSUMER.MSG.NEXT.REFUSALS.d", cb=seen)
    source = PullSource(nc, "REFUSALS", "d", batch=10, inflight=2, expires_s=30)
    await source.start()
    try:
        await observe(lambda: len(requests), 3.0)
        # Two at start, then at most two per watchdog round (once a second).
        assert 2 <= len(requests) <= 12, len(requests)
        for n in range(5):
            await js.publish(f"refusals.{n}", str(n).encode())
        got: list[Msg] = []

        async def delivered() -> bool:
            got.extend(await source.take(5, 0.1, 0.5))
            return len(got) == 5

        await wait_until(delivered, 10, "the 5 messages delivered")
        assert [m.data for m in got] == [str(n).encode() for n in range(5)]
    finally:
        await source.close()
        await watcher.unsubscribe()
        await nc.close()
