"""The limit: the fastest ways Python can consume and ack a stream, and raw store writes."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext

from bench.workloads import Workload
from fleet_runtime.pull import PullSource


async def load_stream(nc: NATS, js: JetStreamContext, workload: Workload) -> int:
    """Store the workload in its stream (core publishes, then wait for the count)."""
    before = (await js.stream_info(workload.stream)).state.messages
    for i, (subject, data, msg_id) in enumerate(workload.messages):
        await nc.publish(subject, data, headers={"Nats-Msg-Id": msg_id})
        if i % 2000 == 1999:
            await nc.flush()
    await nc.flush()
    target = before + len(workload)
    deadline = time.monotonic() + 120
    while (await js.stream_info(workload.stream)).state.messages < target:
        if time.monotonic() > deadline:
            raise RuntimeError(f"stream {workload.stream} did not reach {target} messages")
        await asyncio.sleep(0.05)
    return target


async def _consumer(js: JetStreamContext, stream: str, ack: AckPolicy) -> str:
    name = f"bench-{uuid.uuid4().hex[:8]}"
    await js.add_consumer(
        stream,
        ConsumerConfig(
            durable_name=name,
            ack_policy=ack,
            deliver_policy=DeliverPolicy.ALL,
            max_ack_pending=20_000,
            ack_wait=60,
        ),
    )
    return name


async def fetch_loop(nc: NATS, js: JetStreamContext, stream: str, n: int) -> float:
    """nats-py's documented pull: ``fetch(500)`` then ``ack()`` each. Returns msg/s."""
    name = await _consumer(js, stream, AckPolicy.EXPLICIT)
    sub = await js.pull_subscribe_bind(name, stream=stream)
    got = 0
    started = time.perf_counter()
    while got < n:
        for msg in await sub.fetch(500, timeout=5):
            await msg.ack()
            got += 1
    rate = got / (time.perf_counter() - started)
    await sub.unsubscribe()
    await js.delete_consumer(stream, name)
    return rate


async def callback_pull(
    nc: NATS, js: JetStreamContext, stream: str, n: int, *, ack_all: bool
) -> float:
    """Two MSG.NEXT requests in flight on callback subscriptions (the fleet's PullSource)."""
    name = await _consumer(js, stream, AckPolicy.ALL if ack_all else AckPolicy.EXPLICIT)
    source = PullSource(nc, stream, name, batch=1000, inflight=2)
    got = 0
    started = time.perf_counter()
    await source.start()
    while got < n:
        msgs = await source.take(1000, 0.02, 5.0)
        if ack_all:
            if msgs:
                await msgs[-1].ack()
        else:
            for msg in msgs:
                await msg.ack()
        got += len(msgs)
    rate = got / (time.perf_counter() - started)
    await source.close()
    await js.delete_consumer(stream, name)
    return rate


async def ordered_push(nc: NATS, js: JetStreamContext, stream: str, subject: str, n: int) -> float:
    """An ordered push consumer with a callback, no acks (how a replay reads)."""
    done = asyncio.Event()
    got = 0

    async def on_msg(_msg: Msg) -> None:
        nonlocal got
        got += 1
        if got >= n:
            done.set()

    started = time.perf_counter()
    sub = await js.subscribe(
        subject, stream=stream, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL, cb=on_msg
    )
    await asyncio.wait_for(done.wait(), 300)
    rate = got / (time.perf_counter() - started)
    await sub.unsubscribe()
    return rate


async def timed(fn: Callable[[], Awaitable[int]]) -> float:
    """Run ``fn`` (which returns how many items it wrote) and return items per second."""
    started = time.perf_counter()
    count = await fn()
    return count / (time.perf_counter() - started)
