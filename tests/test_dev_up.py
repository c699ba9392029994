"""`fleet dev up` brings up servers, applies the topology, publishes and stops cleanly."""

from __future__ import annotations

import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from fleet_runtime.dev import worker_partitions
from fleet_runtime.topology import load_topology
from fleet_testing.topologies import StreamsFile

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_dev_up_runs_the_fleet_and_stops_cleanly(tmp_path: Path) -> None:
    data = tmp_path / "dev"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "fleet_runtime.cli",
            "dev",
            "up",
            "--dir",
            str(data),
            "--duration",
            "6",
            "--status-every",
            "2",
            "--rate",
            "300",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    out = proc.stdout
    assert proc.returncode == 0, proc.stderr[-2000:] + out[-2000:]
    assert "topology applied" in out
    # The simulator and the duration start once every worker reports ready.
    assert re.search(r"workers ready [\d.]+s after their start", out), out[-2000:]
    assert "fleet dev: stopped cleanly" in out
    last = [line for line in out.splitlines() if "published" in line and "streams:" in line][-1]
    published = int(re.search(r"published ([\d,]+)", last).group(1).replace(",", ""))
    counts = {
        name: int(n.replace(",", ""))
        for name, n in re.findall(r"([A-Z]+) ([\d,]+)", last.split("streams:")[1].split("|")[0])
    }
    assert published >= 300
    # Every simulated event landed in its stream (MARKET also gets the candles that
    # market-ingest closes), and none was dead-lettered.
    assert counts["BOTS"] + counts["TRADES"] + counts["MARKET"] >= published
    assert counts["DLQ"] == 0
    # The workers that exist were started and none of them exited while the fleet ran.
    for worker in (
        "analytics-projector",
        "backup-runner",
        "bot-lifecycle",
        "market-ingest",
        "trade-recorder",
    ):
        assert re.search(rf"worker {worker} +pid \d+", out)
        assert f"worker {worker} exited with 0" in out
    assert "EXITED" not in out
    # NATS admitted only the generated users (no harness user in dev): each worker ran as
    # itself, with its seed readable by the owner only, and was refused nothing.
    assert f"FLEET_NATS_CREDS={data / 'nats-auth'}" in out
    for worker in ("admin", "publisher", "market-ingest", "trade-recorder"):
        assert stat.S_IMODE((data / "nats-auth" / f"{worker}.nk").stat().st_mode) == 0o600
    assert "no_auth_user" not in (data / "nats-auth" / "nats-auth.conf").read_text()
    logs = "".join(p.read_text() for p in (data / "logs").glob("*.log"))
    assert "nats_permission_denied" not in logs
    # The servers were stopped: nothing still runs out of the data directory.
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True)
    assert str(data) not in ps.stdout


def test_a_partitioned_worker_runs_one_process_per_partition(tmp_path: Path) -> None:
    plain = load_topology(ROOT / "streams.yaml")
    assert worker_partitions(plain, "trade-recorder") == [None]
    split = StreamsFile(ROOT / "streams.yaml").partition(
        "TRADES", subjects="trade.*.*", count=3, key=[2], workers=["trade-recorder"]
    )
    topology = load_topology(split.write(tmp_path / "streams.yaml"))
    assert worker_partitions(topology, "trade-recorder") == [0, 1, 2]
    # analytics-projector also reads TRADES, unpartitioned: still one process.
    assert worker_partitions(topology, "analytics-projector") == [None]
