"""A three-node JetStream cluster keeps an R3 stream writable when a node is killed."""

from __future__ import annotations

import time

import nats
from nats.aio.client import Client as NATS
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import PubAck, StreamConfig
from nats.js.errors import APIError, NoStreamResponseError

from fleet_testing import Fleet


async def publish_until_stored(nc: NATS, subject: str, msg_id: str) -> PubAck:
    """Publish until the stream stores it: a new or re-electing R3 stream has no leader for
    a while, and the same Nats-Msg-Id makes a retry of a stored message a no-op."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return await nc.jetstream(timeout=2).publish(
                subject, msg_id.encode(), headers={"Nats-Msg-Id": msg_id}
            )
        except (NatsTimeoutError, NoStreamResponseError, APIError):
            assert time.monotonic() < deadline, f"R3 stream not writable within 60 s ({msg_id})"
            await nc.flush()  # a server round trip between attempts, not a guessed pause


async def test_r3_stream_survives_a_killed_node_and_its_restart(isolated_fleet: Fleet) -> None:
    cluster = isolated_fleet.launch_nats_cluster(3)
    assert cluster.url.count("nats://") == 3
    nc = await nats.connect(
        servers=cluster.urls, max_reconnect_attempts=-1, reconnect_time_wait=0.2
    )
    js = nc.jetstream(timeout=2)
    try:
        await js.add_stream(StreamConfig(name="R3", subjects=["r3.>"], num_replicas=3))
        # The new stream elects its leader first.
        assert (await publish_until_stored(nc, "r3.a", "before")).seq == 1

        await cluster.node(0).akill()

        # Publishes may fail while the stream elects a new leader.
        assert (await publish_until_stored(nc, "r3.a", "after")).seq == 2

        await cluster.node(0).astart()
        info = await js.stream_info("R3")
        assert info.state.messages == 2
        assert cluster.running
    finally:
        await nc.close()
