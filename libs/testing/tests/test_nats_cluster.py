"""A three-node JetStream cluster keeps an R3 stream writable when a node is killed."""

from __future__ import annotations

import time

import nats
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import StreamConfig
from nats.js.errors import APIError, NoStreamResponseError

from fleet_testing import Fleet


async def test_r3_stream_survives_a_killed_node_and_its_restart(isolated_fleet: Fleet) -> None:
    cluster = isolated_fleet.launch_nats_cluster(3)
    assert cluster.url.count("nats://") == 3
    nc = await nats.connect(
        servers=cluster.urls, max_reconnect_attempts=-1, reconnect_time_wait=0.2
    )
    js = nc.jetstream(timeout=2)
    try:
        await js.add_stream(StreamConfig(name="R3", subjects=["r3.>"], num_replicas=3))
        await js.publish("r3.a", b"before", headers={"Nats-Msg-Id": "before"})

        await cluster.node(0).akill()

        # Publishes may fail while the stream elects a new leader; retry with the same
        # Nats-Msg-Id (deduplicated) until accepted or the deadline passes.
        deadline = time.monotonic() + 60
        while True:
            try:
                ack = await js.publish("r3.a", b"after", headers={"Nats-Msg-Id": "after"})
                break
            except (NatsTimeoutError, NoStreamResponseError, APIError):
                assert time.monotonic() < deadline, "R3 stream not writable 60s after kill"
                await nc.flush()  # a server round trip between attempts, not a guessed pause
        assert ack.seq == 2

        await cluster.node(0).astart()
        info = await js.stream_info("R3")
        assert info.state.messages == 2
        assert cluster.running
    finally:
        await nc.close()
