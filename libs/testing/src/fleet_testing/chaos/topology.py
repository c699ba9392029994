"""The topology the suite runs: streams.yaml at replicas 3, TRADES in two partitions."""

from __future__ import annotations

from pathlib import Path

from fleet_testing.topologies import StreamsFile

REPLICAS = 3
TRADE_PARTITIONS = 2


def chaos_streams(source: Path, target: Path) -> Path:
    """Write the repository's streams.yaml with every stream replicated 3 ways and
    trade-recorder bound per partition (two partitions of TRADES by bot id)."""
    streams = StreamsFile(source).set_replicas(REPLICAS)
    streams.partition(
        "TRADES",
        subjects="trade.*.*",
        count=TRADE_PARTITIONS,
        key=[2],
        workers=["trade-recorder"],
    )
    return streams.write(target)
