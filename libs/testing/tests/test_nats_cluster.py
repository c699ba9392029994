"""A three-node JetStream cluster keeps an R3 stream writable when a node is killed."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import nats
from nats.aio.client import Client as NATS
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import PubAck, StreamConfig
from nats.js.errors import APIError, NoStreamResponseError

from fleet_testing import Fleet

# A JetStream API request in a replicated group is answered once the group has a leader;
# on a loaded two-core machine that can take longer than a single short request timeout.
REQUEST_TIMEOUT = 5.0
DEADLINE = 60.0

T = TypeVar("T")


async def until_accepted(nc: NATS, what: str, request: Callable[[], Awaitable[T]]) -> T:
    """Repeat an idempotent JetStream request until the cluster answers it."""
    deadline = time.monotonic() + DEADLINE
    while True:
        try:
            return await request()
        except (NatsTimeoutError, NoStreamResponseError, APIError):
            assert time.monotonic() < deadline, f"{what}: no answer within {DEADLINE:.0f} s"
            await nc.flush()  # a server round trip between attempts, not a guessed pause


async def publish_until_stored(nc: NATS, subject: str, msg_id: str) -> PubAck:
    """Publish until the stream stores it: a new or re-electing R3 stream has no leader for
    a while, and the same Nats-Msg-Id makes a retry of a stored message a no-op."""
    js = nc.jetstream(timeout=REQUEST_TIMEOUT)
    headers = {"Nats-Msg-Id": msg_id}
    return await until_accepted(
        nc, f"publish {msg_id}", lambda: js.publish(subject, msg_id.encode(), headers=headers)
    )


async def test_r3_stream_survives_a_killed_node_and_its_restart(isolated_fleet: Fleet) -> None:
    cluster = isolated_fleet.launch_nats_cluster(3)
    assert cluster.url.count("nats://") == 3
    nc = await nats.connect(
        servers=cluster.urls, max_reconnect_attempts=-1, reconnect_time_wait=0.2
    )
    js = nc.jetstream(timeout=REQUEST_TIMEOUT)
    try:
        # Creating a stream again with the same configuration is a no-op, so a request that
        # timed out while the stream's group formed can be repeated.
        config = StreamConfig(name="R3", subjects=["r3.>"], num_replicas=3)
        await until_accepted(nc, "create R3", lambda: js.add_stream(config))
        # The new stream elects its leader first.
        assert (await publish_until_stored(nc, "r3.a", "before")).seq == 1

        await cluster.node(0).akill()

        # Publishes may fail while the stream elects a new leader.
        assert (await publish_until_stored(nc, "r3.a", "after")).seq == 2

        await cluster.node(0).astart()
        info = await until_accepted(nc, "R3 info", lambda: js.stream_info("R3"))
        assert info.state.messages == 2
        assert cluster.running
    finally:
        await nc.close()
