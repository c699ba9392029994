"""What binds the MongoDB swap pause on the MongoDB-wire test server (secantusdb).

`fleet replay analytics-projector` swaps each shadow collection in with
``renameCollection`` (``dropTarget: true``). MongoDB does that by metadata; secantusdb
deletes the target's documents and index entries and moves the source's one by one,
each its own commit, under the lock every reader takes. This measures, per collection
size, how long one such rename takes and the longest a concurrent reader waited, on
documents shaped like ``trading_events`` with its indexes (the largest read model).

    .venv/bin/python -m bench.mongo_swap --sizes 100,300,1000
    .venv/bin/python -m bench.mongo_swap --sizes 1000,4000 --no-sync

``--no-sync`` starts secantusdb without ``--sync-on-commit`` (the launcher's servers sync
each commit so that an acknowledged write survives kill -9).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from bson.decimal128 import Decimal128
from pymongo import AsyncMongoClient

from analytics_projector.store.client import INDEXES
from fleet_testing import Fleet


@contextmanager
def _server(sync: bool) -> Iterator[str]:
    """A secantusdb URL: the launcher's (syncs each commit) or one without sync."""
    workdir = Path(tempfile.mkdtemp(prefix="fleet-mongo-swap-"))
    if sync:
        with Fleet(workdir) as fleet:
            fleet.start("mongo")
            yield fleet.server("mongo").url
        return
    (workdir / "secantusd.toml").write_text("")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        sys.executable, "-m", "secantus", "--config", str(workdir / "secantusd.toml"),
        "--host", "127.0.0.1", "--port", str(port), "--storage-path", str(workdir / "data"),
        "--log-level", "WARNING",
    ]  # fmt: skip
    proc = subprocess.Popen(command)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield f"mongodb://127.0.0.1:{port}/?directConnection=true"
    finally:
        proc.terminate()
        proc.wait(30)


def _doc(i: int, tag: str) -> dict[str, Any]:
    return {
        "_id": f"{tag}-{i}",
        "event_type": "trade.executed",
        "user_id": f"user-{i % 10}",
        "bot_id": f"bot-{i % 100}",
        "trading_pair": "BTCUSDT",
        "timestamp": datetime.now(UTC) + timedelta(milliseconds=i),
        "quantity": Decimal128(Decimal("0.5")),
        "price": Decimal128(Decimal("1000.25")),
    }


async def _fill(client: AsyncMongoClient[dict[str, Any]], name: str, n: int, tag: str) -> None:
    collection = client.swap_bench[name]
    await collection.create_indexes(INDEXES["trading_events"])
    for start in range(0, n, 1000):
        await collection.insert_many([_doc(i, tag) for i in range(start, min(n, start + 1000))])


async def measure(url: str, n: int) -> tuple[float, float]:
    """(rename seconds, a reader's longest wait) for ``n`` documents over ``n``."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url, socketTimeoutMS=None)
    reader: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url, socketTimeoutMS=None)
    try:
        for name in ("live", "shadow"):
            await client.swap_bench.drop_collection(name)
        await _fill(client, "live", n, "old")
        await _fill(client, "shadow", n, "new")
        waits: list[float] = []
        stop = asyncio.Event()

        async def read() -> None:
            while not stop.is_set():
                started = time.perf_counter()
                found = await reader.swap_bench.live.find_one({"_id": {"$in": ["old-0", "new-0"]}})
                waits.append(time.perf_counter() - started)
                if found is None:
                    raise AssertionError("the reader found no live collection")

        task = asyncio.create_task(read())
        await asyncio.sleep(0.3)
        started = time.perf_counter()
        await client.admin.command(
            "renameCollection", "swap_bench.shadow", to="swap_bench.live", dropTarget=True
        )
        took = time.perf_counter() - started
        await asyncio.sleep(0.1)
        stop.set()
        await task
        if await client.swap_bench.live.count_documents({"_id": {"$regex": "^new-"}}) != n:
            raise AssertionError("the renamed collection lost documents")
        return took, max(waits)
    finally:
        await client.close()
        await reader.close()


async def main_async(sizes: list[int], sync: bool) -> None:
    with _server(sync) as url:
        print("| documents (source and target) | rename | reader's longest wait | per document |")
        print("|---|---|---|---|")
        for n in sizes:
            took, wait = await measure(url, n)
            print(
                f"| {n:,} | {took * 1000:,.0f} ms | {wait * 1000:,.0f} ms "
                f"| {took / n * 1000:,.2f} ms |",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.mongo_swap", description=__doc__)
    parser.add_argument("--sizes", default="100,300,1000", help="documents, comma-separated")
    parser.add_argument("--no-sync", action="store_true", help="secantusdb without sync")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    asyncio.run(main_async(sizes, sync=not args.no_sync))


if __name__ == "__main__":
    main()
