"""CPU per message of the PostgreSQL workers' decoders against the contract's decoding.

    uv run --locked --no-sync python -m bench.decode_lanes [--events 20000]

On the benchmark's own workloads (``bench.workloads``), each message is decoded the way
the runtime decodes a subscription without its own decoder (``decode_accepted``: the
contract, every type) and by the worker's decoder (its canonical lane, the contract for
the rest). Process CPU time, best of five passes, so other processes on a busy machine
slow the passes down without adding to the figure.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from bench.workloads import bot_lifecycles, trade_fills
from bot_lifecycle.transitions import ACCEPTS as BOT_TYPES
from bot_lifecycle.transitions import decode_bot_event
from fleet_events import decode
from fleet_runtime.staging import decode_accepted
from trade_recorder.executions import ACCEPTS as TRADE_TYPES
from trade_recorder.executions import decode_trade_event

PASSES = 5


def cpu_us(decoder: Callable[[bytes], Any], messages: Sequence[bytes]) -> float:
    """Best-of-``PASSES`` process CPU µs per message of ``decoder``."""
    best = float("inf")
    for _ in range(PASSES):
        start = time.process_time()
        for raw in messages:
            decoder(raw)
        best = min(best, time.process_time() - start)
    return best / len(messages) * 1e6


def main() -> None:
    """Print one row per worker and event type, and one for its whole workload."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    n = parser.parse_args().events
    print("| worker | events | contract µs/msg | worker's decoder µs/msg | ratio |")
    print("|---|---|---|---|---|")
    for worker, workload, types, own in (
        ("trade-recorder", trade_fills(n), TRADE_TYPES, decode_trade_event),
        ("bot-lifecycle", bot_lifecycles(n), BOT_TYPES, decode_bot_event),
    ):
        messages = [data for _, data, _ in workload.messages]
        by_type: dict[str, list[bytes]] = {}
        for raw in messages:
            by_type.setdefault(decode(raw).type, []).append(raw)
        for name, group in [*sorted(by_type.items()), ("all (workload mix)", messages)]:
            contract = cpu_us(partial(decode_accepted, accepts=types), group)
            fast = cpu_us(own, group)
            print(f"| {worker} | {name} | {contract:.1f} | {fast:.1f} | {fast / contract:.2f}× |")


if __name__ == "__main__":
    main()
