"""The generated NATS users on a real nats-server: what each may do, and what it may not.

The server drops what a user may not publish (a JetStream API request then gets no
answer) and reports ``Permissions Violation for Publish to …`` to that client: each test
waits for that report, naming the subject, as the proof of the refusal.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client as NATS
from nats.js.errors import NoStreamResponseError
from runtime_testkit.cli import REPO

from fleet_events import TradeExecuted
from fleet_runtime.natsconnect import denied_permission
from fleet_testing import NatsServer
from fleet_testing.waiting import wait_until

WORKERS = {
    "bot-lifecycle": ("BOTS", "bot.created.b1"),
    "trade-recorder": ("TRADES", "trade.executed.b1"),
    "market-ingest": ("MARKET", "market.tick.BTCUSDT"),
    "analytics-projector": ("TRADES", "trade.executed.b1"),
    "backup-runner": ("OPS", "ops.backup.requested.x1"),
}
# For each worker: another worker's durable it must not pull, and a subject of a stream
# it does not publish to.
FOREIGN = {
    "bot-lifecycle": (("TRADES", "trade-recorder"), "trade.executed.b1"),
    "trade-recorder": (("BOTS", "bot-lifecycle"), "bot.created.b1"),
    "market-ingest": (("TRADES", "analytics-projector"), "trade.executed.b1"),
    "analytics-projector": (("MARKET", "market-ingest"), "market.candle.1m.BTCUSDT"),
    "backup-runner": (("TRADES", "trade-recorder"), "trade.executed.b1"),
}

# Streams each worker reads beyond its first (analytics-projector has three durables,
# backup-runner archives every stream).
READS = {
    "analytics-projector": {"TRADES", "MARKET", "BOTS"},
    "backup-runner": {"BOTS", "TRADES", "MARKET", "OPS", "DLQ", "EXHAUSTED"},
}


@dataclass
class Client:
    """A connection as one user, keeping the permissions the server refused it."""

    nc: NATS
    denied: list[str] = field(default_factory=list)

    async def refused(self, permission: str) -> None:
        """Wait until the server reports ``permission`` (``publish to SUBJECT``) refused.

        nats-py lowercases the server's error text, subjects included.
        """

        async def seen() -> bool:
            return permission.lower() in self.denied

        await wait_until(seen, 10, f"the server refusing {permission} (saw {self.denied})")


@asynccontextmanager
async def connected(server: NatsServer, user: str) -> AsyncIterator[Client]:
    client = Client(nc=NATS())

    async def on_error(exc: Exception) -> None:
        found = denied_permission(exc)
        if found:
            client.denied.append(found)

    await client.nc.connect(
        server.url, error_cb=on_error, allow_reconnect=False, **server.client_options(user)
    )
    try:
        yield client
    finally:
        await client.nc.close()


async def _request_refused(client: Client, subject: str, body: bytes = b"") -> None:
    with pytest.raises((nats.errors.TimeoutError, nats.errors.NoRespondersError)):
        await client.nc.request(subject, body, timeout=1)
    await client.refused(f"publish to {subject}")


async def _publish_refused(client: Client, subject: str) -> None:
    await client.nc.publish(subject, b"{}")
    await client.nc.flush()
    await client.refused(f"publish to {subject}")


@pytest.mark.parametrize("worker", sorted(WORKERS))
async def test_worker_pulls_and_acks_its_own_durable(secured_nats: NatsServer, worker: str) -> None:
    stream, subject = WORKERS[worker]
    async with connected(secured_nats, "publisher") as pub:
        await pub.nc.jetstream().publish(subject, b"{}", headers={"Nats-Msg-Id": f"own-{worker}"})
    async with connected(secured_nats, worker) as me:
        js = me.nc.jetstream()
        info = await js.consumer_info(stream, worker)
        assert info.name == worker
        sub = await js.pull_subscribe_bind(worker, stream)
        msgs = await sub.fetch(1, timeout=5)
        assert [m.subject for m in msgs] == [subject]
        await msgs[0].ack_sync()
        assert me.denied == []


@pytest.mark.parametrize("worker", sorted(WORKERS))
async def test_worker_cannot_consume_another_workers_durable(
    secured_nats: NatsServer, worker: str
) -> None:
    (stream, durable), _ = FOREIGN[worker]
    async with connected(secured_nats, worker) as me:
        inbox = f"_INBOX.{worker}.steal"
        await me.nc.subscribe(inbox)
        next_subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}"
        await me.nc.publish(next_subject, json.dumps({"batch": 1}).encode(), reply=inbox)
        await me.nc.flush()
        await me.refused(f"publish to {next_subject}")
        if stream not in READS.get(worker, {WORKERS[worker][0]}):
            # Consumer info is readable on the streams a worker reads, not elsewhere.
            await _request_refused(me, f"$JS.API.CONSUMER.INFO.{stream}.{durable}")
        await _publish_refused(me, f"$JS.ACK.{stream}.{durable}.1.1.1.1.0")
        # Nor another worker's reader consumer.
        other_reader = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}-reader"
        await _publish_refused(me, other_reader)


@pytest.mark.parametrize("worker", sorted(WORKERS))
async def test_worker_cannot_publish_to_another_streams_subjects(
    secured_nats: NatsServer, worker: str
) -> None:
    _, subject = FOREIGN[worker]
    async with connected(secured_nats, worker) as me:
        with pytest.raises((nats.errors.TimeoutError, NoStreamResponseError)):
            await me.nc.jetstream().publish(subject, b"{}", timeout=1)
        await me.refused(f"publish to {subject}")
        await _publish_refused(me, f"dlq.someone-else.{subject}")


@pytest.mark.parametrize("worker", sorted(WORKERS))
async def test_worker_cannot_delete_purge_or_create(secured_nats: NatsServer, worker: str) -> None:
    stream, _ = WORKERS[worker]
    async with connected(secured_nats, worker) as me:
        for subject in (
            f"$JS.API.STREAM.DELETE.{stream}",
            f"$JS.API.STREAM.PURGE.{stream}",
            f"$JS.API.STREAM.UPDATE.{stream}",
            f"$JS.API.STREAM.CREATE.{worker.upper()}",
            f"$JS.API.CONSUMER.DELETE.{stream}.{worker}",
            f"$JS.API.CONSUMER.DURABLE.CREATE.{stream}.{worker}-x",
            f"$JS.API.CONSUMER.CREATE.{stream}.{worker}",
        ):
            await _request_refused(me, subject, b"{}")
    # Everything is still there.
    async with connected(secured_nats, "admin") as admin:
        assert (await admin.nc.jetstream().consumer_info(stream, worker)).name == worker


async def test_ephemeral_consumer_creation_cannot_take_over_a_durable(
    secured_nats: NatsServer,
) -> None:
    """Workers may create name-less consumers on their streams (replay, archives); a
    request on that subject naming a durable is refused by the server, so the grant
    cannot change another worker's durable."""
    async with connected(secured_nats, "analytics-projector") as me:
        for config in (
            {"durable_name": "trade-recorder", "ack_policy": "none"},
            {"name": "trade-recorder", "ack_policy": "none"},
        ):
            body = json.dumps({"stream_name": "TRADES", "config": config}).encode()
            reply = await me.nc.request("$JS.API.CONSUMER.CREATE.TRADES", body, timeout=5)
            assert "error" in json.loads(reply.data), reply.data
    async with connected(secured_nats, "admin") as admin:
        info = await admin.nc.jetstream().consumer_info("TRADES", "trade-recorder")
        assert str(getattr(info.config.ack_policy, "value", info.config.ack_policy)) == "all"


async def test_publisher_publishes_but_cannot_consume(secured_nats: NatsServer) -> None:
    async with connected(secured_nats, "publisher") as pub:
        ack = await pub.nc.jetstream().publish(
            f"{TradeExecuted.event_type}.b9", b"{}", headers={"Nats-Msg-Id": "pub-1"}
        )
        assert ack.stream == "TRADES"
        for stream, durable in (("TRADES", "trade-recorder"), ("BOTS", "bot-lifecycle")):
            await _publish_refused(pub, f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}")
        await _request_refused(pub, "$JS.API.CONSUMER.CREATE.TRADES", b"{}")
        await _publish_refused(pub, "market.candle.1m.BTCUSDT")
        await pub.nc.subscribe("trade.>")
        await pub.nc.flush()
        await pub.refused("subscribe to trade.>")


async def test_a_client_without_credentials_is_refused(secured_nats: NatsServer) -> None:
    with pytest.raises(Exception, match=r"(?i)authorization"):
        await asyncio.wait_for(
            nats.connect(secured_nats.url, allow_reconnect=False, max_reconnect_attempts=0), 10
        )


async def test_a_worker_started_with_another_workers_credentials_is_refused(
    secured_nats: NatsServer, tmp_path: Path
) -> None:
    assert secured_nats.auth is not None
    env = {
        **os.environ,
        "FLEET_NATS_URL": secured_nats.url,
        "MARKET_INGEST_NATS_CREDS": str(secured_nats.auth.seed("bot-lifecycle")),
        "MARKET_INGEST_STREAMS_FILE": str(REPO / "streams.yaml"),
        # Never reached: the worker stops at its NATS bindings.
        "MARKET_INGEST_REDIS_URL": "redis://127.0.0.1:1/0",
        "MARKET_INGEST_LOG_FORMAT": "json",
        "MARKET_INGEST_STARTUP_TIMEOUT_S": "20",
    }
    env.pop("FLEET_NATS_CREDS", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "fleet_runtime.cli", "worker", "run", "market-ingest",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    text = out.decode()
    assert proc.returncode == 2, text
    denials = [
        json.loads(line)
        for line in text.splitlines()
        if line.startswith("{") and "nats_permission_denied" in line
    ]
    assert denials, text
    assert {d["creds_setting"] for d in denials} == {"MARKET_INGEST_NATS_CREDS"}
    permissions = {d["permission"] for d in denials}
    assert "publish to $js.api.consumer.info.market.market-ingest" in permissions, permissions
    assert all("MARKET_INGEST_NATS_CREDS" in d["fix"] for d in denials)
    # The closing line names the permission and the setting too.
    closing = [line for line in text.splitlines() if line.startswith("error:")]
    assert closing[0].startswith("error: NATS refused "), text
    assert "MARKET_INGEST_NATS_CREDS" in closing[0]
    # The seed itself is never in the output.
    seed = secured_nats.auth.seed("bot-lifecycle").read_text().strip()
    assert seed not in text
