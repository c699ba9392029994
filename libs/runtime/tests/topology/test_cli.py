"""`fleet topology plan|apply|drift` end to end against a real server, output text asserted."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import nats
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, StreamConfig
from typer.testing import CliRunner, Result

from fleet_runtime.cli import app

BASE = (Path(__file__).parent / "base.yaml").read_text()

JsAction = Callable[[JetStreamContext], Awaitable[None]]


def fleet(*args: str) -> Result:
    return CliRunner().invoke(app, ["topology", *args])


def fleet_process(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The real `fleet` entry point, so `error:` / `fix:` lines and exit 2 are what users see."""
    return subprocess.run(
        [sys.executable, "-c", "from fleet_runtime.cli import main; main()", "topology", *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )


def out_of_band(url: str, action: JsAction) -> None:
    """Change the server with nats-py directly, as someone outside the tool would."""

    async def run() -> None:
        nc = await nats.connect(url)
        try:
            await action(nc.jetstream())
        finally:
            await nc.close()

    asyncio.run(run())


def write(tmp_path: Path, text: str = BASE) -> str:
    path = tmp_path / "streams.yaml"
    path.write_text(text)
    return str(path)


def test_apply_then_drift_is_clean(nats_url: str, tmp_path: Path) -> None:
    file = write(tmp_path)
    result = fleet("apply", "--file", file, "--server", nats_url)
    assert result.exit_code == 0, result.output
    assert "stream TRADES: create" in result.output
    assert result.output.strip().endswith("applied: 4 changes")
    again = fleet("apply", "--file", file, "--server", nats_url)
    assert again.output.strip().endswith("applied: 0 changes")
    drift = fleet("drift", "--file", file, "--server", nats_url)
    assert drift.exit_code == 0, drift.output
    assert drift.output.strip() == "no drift: 2 streams and 2 consumers match the file"


def test_drift_detects_out_of_band_changes(nats_url: str, tmp_path: Path) -> None:
    file = write(tmp_path)
    assert fleet("apply", "--file", file, "--server", nats_url).exit_code == 0

    async def tamper(js: JetStreamContext) -> None:
        stream = (await js.stream_info("TRADES")).config
        await js.update_stream(stream.evolve(max_age=96 * 3600))
        await js.delete_consumer("OPS", "backup-runner")
        consumer = (await js.consumer_info("TRADES", "trade-recorder")).config
        await js.add_consumer("TRADES", consumer.evolve(max_deliver=9))
        await js.add_stream(StreamConfig(name="STRAY", subjects=["stray.>"]))
        await js.add_consumer("OPS", ConsumerConfig(durable_name="manual"))

    out_of_band(nats_url, tamper)
    result = fleet("drift", "--file", file, "--server", nats_url)
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "drift: stream TRADES max_age: server has 96h, file has 72h",
        "drift: consumer TRADES/trade-recorder max_deliver: server has 9, file has 5",
        "drift: consumer OPS/backup-runner is missing on the server",
        "drift: consumer OPS/manual exists on the server but not in the file",
        "drift: stream STRAY exists on the server but not in the file",
        "drift: 5 differences",
    ]
    plan = fleet("plan", "--file", file, "--server", nats_url)
    assert plan.exit_code == 0
    assert "stream TRADES: update\n    max_age: 96h -> 72h\n" in plan.output
    assert "consumer OPS/backup-runner: create\n" in plan.output
    assert "stream STRAY: extra (not in the file; kept; --prune deletes it)" in plan.output

    assert fleet("apply", "--file", file, "--server", nats_url).exit_code == 0
    result = fleet("drift", "--file", file, "--server", nats_url)
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "drift: consumer OPS/manual exists on the server but not in the file",
        "drift: stream STRAY exists on the server but not in the file",
        "drift: 2 differences",
    ]


def test_drift_on_an_empty_server_names_every_missing_stream(nats_url: str, tmp_path: Path) -> None:
    result = fleet("drift", "--file", write(tmp_path), "--server", nats_url)
    assert result.exit_code == 1
    assert "drift: stream TRADES is missing on the server" in result.output
    assert "drift: consumer TRADES/trade-recorder is missing on the server" in result.output
    assert result.output.strip().endswith("drift: 4 differences")


def test_cli_refuses_an_immutable_change_and_keeps_the_data(nats_url: str, tmp_path: Path) -> None:
    file = write(tmp_path)
    assert fleet("apply", "--file", file, "--server", nats_url).exit_code == 0

    async def publish(js: JetStreamContext) -> None:
        for n in range(4):
            await js.publish(f"trade.failed.bot{n}", b"{}")

    out_of_band(nats_url, publish)
    write(tmp_path, BASE.replace("storage: file", "storage: memory"))
    refused = fleet_process("apply", "--file", file, "--server", nats_url)
    assert refused.returncode == 2
    assert "error: refused: these changes cannot be made in place" in refused.stderr
    assert "stream TRADES: storage: file -> memory" in refused.stderr
    assert "the server cannot change a stream's storage type" in refused.stderr
    assert "DELETES TRADES and its 4 messages" in refused.stderr
    assert "fix: follow a safe path above, or pass --allow-recreate" in refused.stderr

    counts: list[int] = []

    async def count(js: JetStreamContext) -> None:
        counts.append((await js.stream_info("TRADES")).state.messages)

    out_of_band(nats_url, count)
    assert counts == [4]

    recreated = fleet_process("apply", "--file", file, "--server", nats_url, "--allow-recreate")
    assert recreated.returncode == 0, recreated.stderr
    assert "WARNING: deleting stream TRADES and all 4 messages in it" in recreated.stderr
    assert "stream TRADES: requires-recreate" in recreated.stdout
    out_of_band(nats_url, count)
    assert counts == [4, 0]


def test_unreachable_server_is_one_clear_error(tmp_path: Path) -> None:
    url = "nats://127.0.0.1:1"
    result = fleet_process("plan", "--file", write(tmp_path), "--server", url)
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: cannot connect to NATS at {url}")
    assert "fix: start nats-server with -js" in result.stderr
    assert "Traceback" not in result.stderr
