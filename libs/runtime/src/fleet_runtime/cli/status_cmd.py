"""`fleet status`: lag and redeliveries of every declared durable, dead letters per worker."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

from fleet_events import DLQ_STREAM, DLQ_SUBJECTS
from fleet_runtime.exhausted import ADVISORY_SUBJECT, EXHAUSTED_STREAM
from fleet_runtime.topology import Topology, default_url, load_topology, open_jetstream
from fleet_runtime.topology.connection import URL_ENV


@dataclass(frozen=True)
class DurableStatus:
    """What the server says about one durable (None fields: the durable is missing)."""

    worker: str
    stream: str
    durable: str
    num_pending: int | None
    num_ack_pending: int | None
    num_redelivered: int | None
    last_active: datetime | None


async def dlq_depth(js: JetStreamContext) -> Counter[str]:
    """Dead letters per worker (from the DLQ stream's per-subject counts)."""
    depth: Counter[str] = Counter()
    try:
        info = await js.stream_info(DLQ_STREAM, subjects_filter=DLQ_SUBJECTS)
    except NotFoundError:
        return depth
    for subject, count in (info.state.subjects or {}).items():
        depth[subject.split(".")[1]] += count
    return depth


async def exhausted_depth(js: JetStreamContext) -> Counter[str]:
    """Given-up messages not yet dead-lettered, per consumer (the EXHAUSTED stream's advisories)."""
    depth: Counter[str] = Counter()
    try:
        info = await js.stream_info(EXHAUSTED_STREAM, subjects_filter=f"{ADVISORY_SUBJECT}.>")
    except NotFoundError:
        return depth
    for subject, count in (info.state.subjects or {}).items():
        depth[subject.rsplit(".", 1)[1]] += count
    return depth


async def collect(js: JetStreamContext, topology: Topology) -> list[DurableStatus]:
    """The status of every durable the topology declares."""
    found = []
    for d in topology.durables():
        try:
            info = await js.consumer_info(d.stream, d.name)
        except NotFoundError:
            found.append(DurableStatus(d.spec.worker, d.stream, d.name, None, None, None, None))
            continue
        found.append(
            DurableStatus(
                worker=d.spec.worker,
                stream=d.stream,
                durable=d.name,
                num_pending=info.num_pending,
                num_ack_pending=info.num_ack_pending,
                num_redelivered=info.num_redelivered,
                last_active=info.delivered.last_active if info.delivered else None,
            )
        )
    return found


async def _run(
    server: str, topology: Topology
) -> tuple[list[DurableStatus], Counter[str], Counter[str]]:
    async with open_jetstream(server) as js:
        return await collect(js, topology), await dlq_depth(js), await exhausted_depth(js)


def _n(value: int | None) -> str:
    return "-" if value is None else str(value)


def status(
    file: Annotated[Path, typer.Option("--file", "-f", help="The topology file.")] = Path(
        "streams.yaml"
    ),
    server: Annotated[
        str | None,
        typer.Option("--server", "-s", help=f"NATS server URL (default: ${URL_ENV} or local)."),
    ] = None,
) -> None:
    """Per durable: pending (lag), awaiting ack, redelivered, last activity; DLQ depth."""
    topology = load_topology(file)
    rows, depth, given_up = asyncio.run(_run(server or default_url(), topology))
    typer.echo(
        f"{'WORKER':<22} {'STREAM':<8} {'DURABLE':<24} {'PENDING':>9} {'ACK PEND':>9} "
        f"{'REDELIV':>8} {'DLQ':>6}  LAST ACTIVE (UTC)"
    )
    for r in rows:
        active = r.last_active.strftime("%Y-%m-%d %H:%M:%S") if r.last_active else "-"
        if r.num_pending is None:
            active = "MISSING: run `fleet topology apply`"
        typer.echo(
            f"{r.worker:<22} {r.stream:<8} {r.durable:<24} {_n(r.num_pending):>9} "
            f"{_n(r.num_ack_pending):>9} {_n(r.num_redelivered):>8} {depth[r.worker]:>6}  "
            f"{active}"
        )
    others = sorted(set(depth) - set(topology.workers()))
    for worker in others:
        typer.echo(f"dead letters of undeclared worker {worker}: {depth[worker]}")
    for durable, count in sorted(given_up.items()):
        typer.echo(
            f"given up by the server after max_deliver, not yet dead-lettered: {durable}: "
            f"{count} (the worker moves them to the DLQ while it runs)"
        )
