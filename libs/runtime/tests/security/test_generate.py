"""`fleet security generate`: seed files, the server config, and what each user is granted."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from runtime_testkit.cli import REPO, FleetRunner

from fleet_runtime.security.credentials import public_key, read_seed
from fleet_runtime.security.grants import Grant, fleet_grants, reader_consumer
from fleet_runtime.topology import load_topology
from fleet_runtime.workers import discover_workers

WORKERS = [
    "analytics-projector",
    "backup-runner",
    "bot-lifecycle",
    "market-ingest",
    "trade-recorder",
]


def _grants(max_partitions: int = 0) -> dict[str, Grant]:
    topology = load_topology(REPO / "streams.yaml")
    found = fleet_grants(topology, discover_workers(), max_partitions=max_partitions)
    return {g.user: g for g in found}


def test_generate_writes_private_seeds_and_never_prints_them(
    fleet_cli: FleetRunner, tmp_path: Path
) -> None:
    out = tmp_path / "creds"
    run = fleet_cli("security", "generate", "--out", str(out))
    assert run.code == 0, run.err
    users = ["admin", "publisher", *WORKERS]
    for user in users:
        seed_path = out / f"{user}.nk"
        assert stat.S_IMODE(seed_path.stat().st_mode) == 0o600
        seed = read_seed(seed_path)
        assert seed.startswith(b"SU")
        assert seed.decode() not in run.out + run.err
        # The server config holds the public key only.
        config = (out / "nats-auth.conf").read_text()
        assert public_key(seed) in config
        assert seed.decode() not in config
    assert stat.S_IMODE((out / "nats-auth.conf").stat().st_mode) == 0o600
    assert stat.S_IMODE(out.stat().st_mode) == 0o700


def test_generating_again_keeps_keys_and_rotate_replaces_one(
    fleet_cli: FleetRunner, tmp_path: Path
) -> None:
    out = tmp_path / "creds"
    assert fleet_cli("security", "generate", "--out", str(out)).code == 0
    before = {p.name: p.read_bytes() for p in out.glob("*.nk")}
    assert fleet_cli("security", "generate", "--out", str(out)).code == 0
    assert {p.name: p.read_bytes() for p in out.glob("*.nk")} == before
    run = fleet_cli("security", "generate", "--out", str(out), "--rotate", "market-ingest")
    assert run.code == 0, run.err
    after = {p.name: p.read_bytes() for p in out.glob("*.nk")}
    changed = sorted(n for n in after if after[n] != before[n])
    assert changed == ["market-ingest.nk"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--worker", "no-such-worker"], "error: unknown worker 'no-such-worker'"),
        (["--rotate", "nobody"], "error: cannot rotate unknown user 'nobody'"),
        (["--streams", "missing.yaml"], "error: "),
    ],
)
def test_bad_input_is_one_line(
    fleet_cli: FleetRunner, tmp_path: Path, args: list[str], message: str
) -> None:
    run = fleet_cli("security", "generate", "--out", str(tmp_path / "creds"), *args)
    assert run.code == 2
    lines = run.err.strip().splitlines()
    assert lines[0].startswith(message), run.err
    assert len(lines) <= 2
    assert len(lines) == 1 or lines[1].startswith("fix: ")
    assert "Traceback" not in run.err


def test_unreadable_streams_file_is_one_line(fleet_cli: FleetRunner, tmp_path: Path) -> None:
    streams = tmp_path / "streams.yaml"
    streams.write_text("streams: [")
    run = fleet_cli("security", "generate", "-o", str(tmp_path / "c"), "-f", str(streams))
    assert run.code == 2
    assert run.err.startswith("error: ")
    assert "Traceback" not in run.err


def test_each_worker_is_granted_its_own_durables_only() -> None:
    grants = _grants()
    for name in WORKERS:
        grant = grants[name]
        assert grant.publish is not None
        assert grant.subscribe == (f"_INBOX.{name}.>",)
        own = {d for _, d in grant.durables}
        assert own == {name}
        reader = reader_consumer(name)
        for subject in grant.publish:
            if subject.startswith(("$JS.API.CONSUMER.MSG.NEXT.", "$JS.ACK.")):
                consumer = subject.split(".")[6 if subject.startswith("$JS.API") else 3]
                assert consumer in {name, reader}
            if "DELETE" in subject:
                assert subject.endswith((".EXHAUSTED", f".{reader}"))
            assert "PURGE" not in subject
            assert "STREAM.CREATE" not in subject
            assert "DURABLE" not in subject
        assert f"dlq.{name}.>" in grant.publish


def test_outputs_are_granted_from_the_worker_specs() -> None:
    grants = _grants()
    assert "market.candle.*.*" in (grants["market-ingest"].publish or ())
    backup = grants["backup-runner"].publish or ()
    assert {"ops.backup.completed.*", "ops.backup.failed.*", "ops.backup.requested.*"} <= set(
        backup
    )
    assert "trade.executed.*" not in (grants["trade-recorder"].publish or ())
    assert "market.candle.*.*" not in (grants["publisher"].publish or ())


def test_publisher_cannot_consume_and_admin_is_unrestricted() -> None:
    grants = _grants()
    publisher = grants["publisher"].publish or ()
    assert "trade.executed.*" in publisher
    assert "market.tick.*" in publisher
    assert not [s for s in publisher if "CONSUMER" in s or s.startswith("$JS.ACK")]
    assert grants["publisher"].subscribe == ("_INBOX.publisher.>",)
    assert grants["admin"].unrestricted


def test_max_partitions_grants_partition_durables() -> None:
    grant = _grants(max_partitions=2)["trade-recorder"]
    assert {d for _, d in grant.durables} == {
        "trade-recorder",
        "trade-recorder-p0",
        "trade-recorder-p1",
    }
