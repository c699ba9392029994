"""The backup-runner process end to end: requests on OPS in, backups in SeaweedFS and
outcomes on OPS out, with the runner killed and S3 stopped in between."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import nats.js.errors
import pytest
from nats.js.client import JetStreamContext

from backup_runner.app import object_store
from backup_runner.archive_chain import archived_ranges, chain_gaps
from backup_runner.manifest import manifest_key, read_manifest, verify_object
from backup_runner.objects import MinioObjectStore, ObjectMissing
from backup_runner.settings import BackupRunnerSettings
from fleet_events import BackupRequested, BackupTarget, new_event
from fleet_runtime.errors import StoreUnavailable
from fleet_runtime.publisher import EventPublisher
from fleet_runtime.topology import apply, load_topology
from fleet_testing import Fleet, free_port
from fleet_testing.topologies import StreamsFile
from fleet_testing.waiting import wait_until
from fleet_testing.workerprocs import kill_leftovers, settings_env, start_worker

from .conftest import s3_settings

REPO = Path(__file__).resolve().parents[3]
WORKER = "backup-runner"
ACK_WAIT_S = 4


def archived_ranges_of(keys: list[str]) -> list[tuple[int, int]]:
    """(first, last) of each segment key."""
    found = []
    for key in keys:
        first, last = key.rsplit("/", 1)[1].removesuffix(".jsonl.zst").split("-")
        found.append((int(first), int(last)))
    return found


def topology_file(tmp_path: Path) -> Path:
    """streams.yaml with the runner's ack wait at 4 s (10 min in production): a killed
    runner's request comes back in seconds, and a backup that outlives it must be kept in
    progress by the runtime's heartbeats."""
    streams = StreamsFile(REPO / "streams.yaml")
    streams.consumer(WORKER, "OPS")["ack_wait"] = f"{ACK_WAIT_S}s"
    return streams.write(tmp_path / "streams.yaml")


class Scene:
    """An isolated fleet with the topology applied, and the runner's environment."""

    def __init__(self, fleet: Fleet, tmp_path: Path, js: JetStreamContext) -> None:
        self.fleet = fleet
        self.tmp_path = tmp_path
        self.js = js
        self.settings = BackupRunnerSettings(
            **s3_settings(fleet.s3, "backups-e2e"),
            nats_url=fleet.nats.url,
            nats_creds=fleet.nats.creds_dir,
            archive_streams=["BOTS"],
            segment_max_messages=1,
        )
        self.store: MinioObjectStore = object_store(self.settings)
        self.health_port = free_port()
        self.env = {
            **os.environ,
            **settings_env(self.settings),
            "BACKUP_RUNNER_STREAMS_FILE": str(topology_file(tmp_path)),
            "BACKUP_RUNNER_LOG_FORMAT": "json",
            "BACKUP_RUNNER_HEALTH_PORT": str(self.health_port),
        }
        self.workers: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        worker = start_worker(WORKER, self.env, self.tmp_path / "runner.log")
        self.workers.append(worker)
        return worker

    async def request(self, backup_id: str, target: str, scope: str | None = None) -> None:
        data = BackupRequested(
            backup_id=backup_id,
            target=BackupTarget(target),
            requested_by="test",
            scope=scope,
        )
        await EventPublisher(self.js).publish(new_event(data, source="test"))

    async def request_raw(self, backup_id: str, target: str) -> None:
        """A request as a publisher outside the typed library could send it."""
        event = new_event(
            BackupRequested(backup_id=backup_id, target=BackupTarget.STREAM, requested_by="t"),
            source="test",
        )
        doc = json.loads(event.model_dump_json())
        doc["data"]["target"] = target
        await self.js.publish(
            f"ops.backup.requested.{backup_id}",
            json.dumps(doc).encode(),
            headers={"Nats-Msg-Id": str(event.id)},
        )

    async def outcome(self, verb: str, backup_id: str) -> dict[str, Any] | None:
        """The data of the last ``ops.backup.<verb>.<id>`` event, or None."""
        try:
            msg = await self.js.get_last_msg("OPS", f"ops.backup.{verb}.{backup_id}")
        except nats.js.errors.NotFoundError:
            return None
        data: dict[str, Any] = json.loads(msg.data or b"{}")["data"]
        return data

    async def settled(self) -> bool:
        info = await self.js.consumer_info("OPS", WORKER)
        return not info.num_pending and not info.num_ack_pending

    def metric(self, line_start: str) -> float | None:
        """The value of the first /metrics line starting with ``line_start``, or None."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/metrics") as r:
                text = r.read().decode()
        except OSError:
            return None
        for line in text.splitlines():
            if line.startswith(line_start):
                return float(line.rsplit(" ", 1)[1])
        return None

    def segments(self) -> int:
        """How many BOTS segments the archive holds (0 before the bucket exists)."""
        try:
            return len(archived_ranges(self.store, "BOTS"))
        except StoreUnavailable:
            return 0

    def manifest_exists(self, backup_id: str) -> bool:
        try:
            read_manifest(self.store, backup_id)
        except ObjectMissing:
            return False
        return True


@pytest.fixture
async def scene(isolated_fleet: Fleet, tmp_path: Path) -> AsyncIterator[Scene]:
    isolated_fleet.start("nats", "s3")
    nc = await nats.connect(isolated_fleet.nats.url)
    js = nc.jetstream()
    await apply(js, load_topology(topology_file(tmp_path)))
    made = Scene(isolated_fleet, tmp_path, js)
    try:
        yield made
    finally:
        kill_leftovers(made.workers)
        await nc.close()


async def publish_bots(js: JetStreamContext, count: int) -> None:
    for i in range(count):
        await js.publish(f"bot.created.b{i}", json.dumps({"n": i}).encode())


async def test_unknown_target_or_scope_gets_a_failed_event_and_is_acked(scene: Scene) -> None:
    scene.start()
    await scene.request_raw("bad-target", "redis")
    await scene.request("bad-scope", "stream", "MARKETZ")
    await wait_until(lambda: scene.outcome("failed", "bad-scope"), 60, "failed event")
    target = await scene.outcome("failed", "bad-target")
    scope = await scene.outcome("failed", "bad-scope")
    assert target is not None
    assert scope is not None
    assert target["target"] is None
    assert target["reason"].startswith("invalid request: ")
    assert "redis" in target["reason"]
    assert scope["target"] == "stream"
    assert scope["reason"] == "unknown stream 'MARKETZ' (known: BOTS)"
    await wait_until(scene.settled, 10, "both requests acked")
    assert not scene.manifest_exists("bad-scope")
    assert scene.metric('fleet_backup_failures_total{target="unknown"}') == 1
    assert scene.metric('fleet_backup_failures_total{target="stream"}') == 1


async def test_kill_9_mid_backup_leaves_no_manifest_and_the_redelivery_completes(
    scene: Scene,
) -> None:
    await publish_bots(scene.js, 150)
    runner = scene.start()
    await scene.request("killed", "stream")
    await wait_until(lambda: scene.segments() >= 5, 60, "the backup under way")
    runner.send_signal(signal.SIGKILL)
    runner.wait(timeout=10)
    assert scene.segments() < 150, "the kill must land mid-backup"
    assert not scene.manifest_exists("killed")
    assert await scene.outcome("completed", "killed") is None

    scene.start()
    await wait_until(lambda: scene.outcome("completed", "killed"), 90, "completed after restart")
    await wait_until(scene.settled, 10, "request acked")
    assert (scene.metric('fleet_backup_last_success_timestamp_seconds{target="stream"}') or 0) > 0
    assert scene.metric("fleet_backup_archive_gaps") == 0
    manifest = read_manifest(scene.store, "killed")
    assert manifest.positions["stream.BOTS"]["archived_through"] == 150
    # The killed run's segments are read back, checked and listed too: the manifest alone
    # covers 1..150 without a hole.
    listed = sorted(archived_ranges_of([o.key for o in manifest.objects]))
    assert listed[0][0] == 1
    assert listed[-1][1] == 150
    assert chain_gaps("BOTS", listed) == []
    assert any("interrupted run" in o.what for o in manifest.objects)
    ranges = archived_ranges(scene.store, "BOTS")
    assert (ranges[0][0], ranges[-1][1]) == (1, 150)
    assert chain_gaps("BOTS", ranges) == []
    assert all(verify_object(scene.store, o) is None for o in manifest.objects)


async def test_s3_stopped_mid_backup_gets_a_failed_event_then_the_backup_completes(
    scene: Scene,
) -> None:
    await publish_bots(scene.js, 120)
    scene.start()
    await scene.request("outage", "stream")
    await wait_until(lambda: scene.segments() >= 5, 60, "the backup under way")
    await scene.fleet.s3.astop()

    await wait_until(lambda: scene.outcome("failed", "outage"), 60, "failed event")
    failed = await scene.outcome("failed", "outage")
    assert failed is not None
    assert failed["retrying"] is True
    # Unreachable, or an InternalError from a gateway shutting down: either way S3 is named.
    assert failed["reason"].startswith("store unavailable: S3 ")
    # Held in progress through the outage (ack wait 4 s): not redelivered, not acked.
    info = await scene.js.consumer_info("OPS", WORKER)
    assert info.num_ack_pending == 1

    await scene.fleet.s3.astart()
    await wait_until(lambda: scene.outcome("completed", "outage"), 90, "completed after S3")
    await wait_until(scene.settled, 10, "request acked")
    info = await scene.js.consumer_info("OPS", WORKER)
    assert info.num_redelivered == 0
    ranges = archived_ranges(scene.store, "BOTS")
    assert (ranges[0][0], ranges[-1][1]) == (1, 120)
    assert chain_gaps("BOTS", ranges) == []
    completed = await scene.outcome("completed", "outage")
    assert completed is not None
    assert completed["object_key"] == manifest_key("outage")
    manifest = read_manifest(scene.store, "outage")
    assert manifest.positions["stream.BOTS"]["archived_through"] == 120


async def test_the_schedule_requests_a_backup_per_slot_through_the_stream(scene: Scene) -> None:
    await publish_bots(scene.js, 3)
    scene.env["BACKUP_RUNNER_SCHEDULE_EVERY_S"] = "2"
    scene.env["BACKUP_RUNNER_SCHEDULE_TARGETS"] = '["stream"]'
    scene.start()

    async def subjects(verb: str) -> list[str]:
        info = await scene.js.stream_info("OPS", subjects_filter=f"ops.backup.{verb}.>")
        return sorted(info.state.subjects or {})

    async def two_completed() -> bool:
        return len(await subjects("completed")) >= 2

    await wait_until(two_completed, 60, "two scheduled backups completed")
    requested = await subjects("requested")
    completed = await subjects("completed")
    assert all(s.startswith("ops.backup.requested.sched-stream-") for s in requested)
    # One request per slot (never two for the same id), each with its outcome.
    assert {s.rsplit(".", 1)[1] for s in completed} <= {s.rsplit(".", 1)[1] for s in requested}
    info = await scene.js.stream_info("OPS", subjects_filter="ops.backup.requested.>")
    assert all(n == 1 for n in (info.state.subjects or {}).values())
    first = read_manifest(scene.store, completed[0].rsplit(".", 1)[1])
    assert first.requested_by == "schedule"
    assert first.positions["stream.BOTS"]["archived_through"] == 3
