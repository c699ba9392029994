"""The launcher's NATS runs with the fleet's generated users unless told otherwise."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import nats
from nats.aio.client import Client as NATS

from fleet_runtime.natsconnect import denied_permission
from fleet_runtime.topology import apply, load_topology
from fleet_testing import Fleet
from fleet_testing.natsauth import repo_streams_file
from fleet_testing.waiting import wait_until


async def test_auth_is_on_by_default_and_the_harness_cannot_pull_a_workers_durable(
    tmp_path: Path,
) -> None:
    with Fleet(tmp_path / "fleet", use_external=False) as fleet:
        server = fleet.nats
        env = fleet.env()
        creds = Path(env["FLEET_NATS_CREDS"])
        assert stat.S_IMODE((creds / "trade-recorder.nk").stat().st_mode) == 0o600
        # No credentials: the test harness, which may set up streams...
        nc = await nats.connect(server.url)
        denied: list[str] = []
        try:
            await apply(nc.jetstream(), load_topology(repo_streams_file()))
            # ...but not consume as a worker: a worker process without its seed fails.
            harness = NATS()

            async def on_error(exc: Exception) -> None:
                found = denied_permission(exc)
                if found:
                    denied.append(found)

            await harness.connect(server.url, error_cb=on_error)
            subject = "$JS.API.CONSUMER.MSG.NEXT.TRADES.trade-recorder"
            await harness.publish(subject, b'{"batch": 1}', reply="_INBOX.h")
            await harness.flush()

            async def refused() -> bool:
                return f"publish to {subject.lower()}" in denied

            await wait_until(refused, 10, "the harness refused a worker's pull")
            await harness.close()
        finally:
            await nc.close()
        # The worker's own seed pulls.
        worker = await nats.connect(server.url, **server.client_options("trade-recorder"))
        try:
            info = await worker.jetstream().consumer_info("TRADES", "trade-recorder")
            assert info.name == "trade-recorder"
        finally:
            await worker.close()


async def test_auth_off_by_environment(tmp_path: Path) -> None:
    fleet = Fleet(tmp_path / "fleet", use_external=False, environ={"FLEET_NATS_AUTH": "off"})
    with fleet:
        assert fleet.nats.auth is None
        assert "FLEET_NATS_CREDS" not in fleet.env()
        nc = await asyncio.wait_for(nats.connect(fleet.nats.url), 10)
        await nc.close()
