"""Worker processes for end-to-end tests: started as `fleet worker run`, killable, drained."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from nats.js.client import JetStreamContext


def start_worker(
    name: str, env: Mapping[str, str], log: Path, partition: int | None = None
) -> subprocess.Popen[bytes]:
    """Run ``fleet worker run NAME [--partition K]`` with its output appended to ``log``."""
    args = [sys.executable, "-m", "fleet_runtime.cli", "worker", "run", name]
    if partition is not None:
        args += ["--partition", str(partition)]
    with log.open("ab") as out:
        return subprocess.Popen(args, env=dict(env), stdout=out, stderr=out)


async def partitions_drained(
    js: JetStreamContext, stream: str, durable: str, partitions: int
) -> bool:
    """Whether every partition durable (``<durable>-p<k>``) has nothing pending or unacked."""
    for k in range(partitions):
        info = await js.consumer_info(stream, f"{durable}-p{k}")
        if info.num_pending or info.num_ack_pending:
            return False
    return True


async def partitions_used(
    js: JetStreamContext, stream: str, durable: str, partitions: int
) -> list[int]:
    """How many messages each partition durable delivered (all > 0: every one was used)."""
    return [
        (await js.consumer_info(stream, f"{durable}-p{k}")).delivered.consumer_seq
        for k in range(partitions)
    ]
