"""TLS to NATS: the server's certificate checked against a CA from the settings, and
mutual TLS where the client certificate is the user (``verify_and_map``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client as NATS
from runtime_testkit.cli import REPO

from fleet_runtime.natsauth import nats_auth
from fleet_runtime.natsconnect import connect_nats, denied_permission
from fleet_runtime.security.generate import generate
from fleet_runtime.settings import WorkerSettings
from fleet_runtime.topology import apply, load_topology
from fleet_testing import NatsServer
from fleet_testing.natsauth import NatsAuthSetup, make_auth
from fleet_testing.tlscerts import TestCA
from fleet_testing.waiting import wait_until


@contextlib.contextmanager
def running(server: NatsServer) -> Iterator[NatsServer]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def _apply_as(nc: NATS) -> None:
    await apply(nc.jetstream(), load_topology(REPO / "streams.yaml"))


def _settings(url: str, **values: Path) -> WorkerSettings:
    return WorkerSettings(nats_url=url, startup_timeout_s=5, **values)  # type: ignore[arg-type]


async def test_tls_with_the_ca_from_the_settings(tmp_path: Path) -> None:
    ca = TestCA(tmp_path / "tls")
    server_cert = ca.server()
    auth = make_auth(tmp_path / "creds", anonymous=False)
    tls = {"cert_file": str(server_cert.cert), "key_file": str(server_cert.key)}
    with running(NatsServer(tmp_path / "nats", auth=auth, tls=tls)) as server:
        assert server.url.startswith("tls://")
        admin = _settings(server.url, nats_creds=auth.directory, nats_tls_ca=ca.ca_file)
        nc = await connect_nats(server.url, "admin", auth=nats_auth(admin, "admin"))
        try:
            await _apply_as(nc)
        finally:
            await nc.close()
        worker = _settings(server.url, nats_creds=auth.directory, nats_tls_ca=ca.ca_file)
        nc = await connect_nats(server.url, "t", auth=nats_auth(worker, "trade-recorder"))
        try:
            info = await nc.jetstream().consumer_info("TRADES", "trade-recorder")
            assert info.name == "trade-recorder"
        finally:
            await nc.close()
        # Without the CA the server's certificate is not trusted.
        with pytest.raises(Exception, match=r"(?i)certificate"):
            await nats.connect(
                server.url,
                allow_reconnect=False,
                max_reconnect_attempts=0,
                connect_timeout=3,
                **auth.client_options("trade-recorder"),
            )


async def test_mutual_tls_maps_the_client_certificate_to_its_user(tmp_path: Path) -> None:
    ca = TestCA(tmp_path / "tls")
    server_cert = ca.server()
    made = generate(tmp_path / "users", streams_file=REPO / "streams.yaml", certificates=True)
    assert made.seeds == {}
    assert 'user: "CN=trade-recorder"' in made.config.read_text()
    auth = NatsAuthSetup(made.config.parent, made.config, anonymous=False)
    tls = {
        "cert_file": str(server_cert.cert),
        "key_file": str(server_cert.key),
        "ca_file": str(ca.ca_file),
        "verify_and_map": True,
    }
    with running(NatsServer(tmp_path / "nats", auth=auth, tls=tls)) as server:

        def as_user(user: str) -> WorkerSettings:
            client = ca.client(user)
            return _settings(
                server.url,
                nats_tls_ca=ca.ca_file,
                nats_tls_cert=client.cert,
                nats_tls_key=client.key,
            )

        nc = await connect_nats(server.url, "admin", auth=nats_auth(as_user("admin"), "admin"))
        try:
            await _apply_as(nc)
        finally:
            await nc.close()
        denied: list[str] = []
        recorder = nats_auth(as_user("trade-recorder"), "trade-recorder")
        assert recorder.setting == "NATS_TLS_CERT"
        assert not recorder.anonymous

        async def on_error(exc: Exception) -> None:
            found = denied_permission(exc)
            if found:
                denied.append(found)

        nc = NATS()
        await nc.connect(server.url, error_cb=on_error, allow_reconnect=False, **recorder.options)
        try:
            js = nc.jetstream(timeout=1)
            assert (await js.consumer_info("TRADES", "trade-recorder")).name == "trade-recorder"
            with pytest.raises(nats.errors.TimeoutError):
                await js.consumer_info("BOTS", "bot-lifecycle")

            async def refused() -> bool:
                return "publish to $js.api.consumer.info.bots.bot-lifecycle" in denied

            await wait_until(refused, 10, "the server refusing another worker's durable")
        finally:
            await nc.close()
        # A client without a certificate is refused outright.
        with pytest.raises(Exception):  # noqa: B017, PT011 - the TLS handshake error varies
            await nats.connect(
                server.url,
                allow_reconnect=False,
                max_reconnect_attempts=0,
                connect_timeout=3,
                tls=nats_auth(_settings(server.url, nats_tls_ca=ca.ca_file), "x").options["tls"],
            )
