"""`fleet dlq`: list, show, redrive and purge dead letters."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer
from nats.js.client import JetStreamContext

from fleet_events import DecodeError, decode
from fleet_runtime import dlq
from fleet_runtime.deadletter import DeadLetter
from fleet_runtime.topology import default_url, open_jetstream
from fleet_runtime.topology.connection import URL_ENV

app = typer.Typer(help="Inspect, redrive and purge dead letters.", no_args_is_help=True)

ServerOption = Annotated[
    str | None,
    typer.Option("--server", "-s", help=f"NATS server URL (default: ${URL_ENV} or local)."),
]
WorkerOption = Annotated[str | None, typer.Option("--worker", "-w", help="Only this worker's.")]
SeqsArgument = Annotated[list[int] | None, typer.Argument(help="DLQ sequence numbers.")]
AllOption = Annotated[bool, typer.Option("--all", help="Every dead letter that matches.")]


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _row(x: DeadLetter) -> str:
    origin = f"{x.subject} ({x.stream}#{x.seq})"
    return (
        f"{x.dlq_seq or 0:>7}  {_clip(x.worker, 20):<20}  {_clip(origin, 44):<44}  "
        f"{_clip(x.error_class, 18):<18}  {x.deliveries:>4}  "
        f"{x.time.strftime('%Y-%m-%d %H:%M:%S')}  {_clip(x.error, 60)}"
    )


async def _run_list(server: str, worker: str | None, limit: int) -> list[DeadLetter]:
    async with open_jetstream(server) as js:
        return await dlq.list_letters(js, worker=worker, limit=limit)


@app.command("list")
def list_cmd(
    server: ServerOption = None,
    worker: WorkerOption = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="Show at most N.")] = 50,
) -> None:
    """One line per dead letter, oldest first."""
    letters = asyncio.run(_run_list(server or default_url(), worker, limit))
    if not letters:
        typer.echo("no dead letters" + (f" for worker {worker}" if worker else ""))
        return
    typer.echo(
        f"{'DLQ SEQ':>7}  {'WORKER':<20}  {'ORIGINAL SUBJECT (STREAM#SEQ)':<44}  "
        f"{'ERROR CLASS':<18}  {'DLVR':>4}  {'TIME (UTC)':<19}  ERROR"
    )
    for letter in letters:
        typer.echo(_row(letter))


async def _run_show(server: str, seq: int) -> DeadLetter:
    async with open_jetstream(server) as js:
        return await dlq.get_letter(js, seq)


@app.command("show")
def show(
    seq: Annotated[int, typer.Argument(help="DLQ sequence number.")], server: ServerOption = None
) -> None:
    """Every detail of one dead letter, and the original event if it decodes."""
    x = asyncio.run(_run_show(server or default_url(), seq))
    fields = {
        "dlq seq": x.dlq_seq,
        "worker": x.worker,
        "original stream": x.stream,
        "original seq": x.seq,
        "original subject": x.subject,
        "event id": x.event_id or "-",
        "error class": x.error_class,
        "error": x.error,
        "deliveries": x.deliveries,
        "time": x.time.isoformat(),
        "bytes": len(x.data),
    }
    for name, value in fields.items():
        typer.echo(f"{name + ':':<18} {value}")
    try:
        event = decode(x.data)
    except DecodeError as exc:
        typer.echo(f"original (not decodable: {exc}):")
        typer.echo(x.data.decode("utf-8", errors="replace"))
        return
    typer.echo("original event:")
    typer.echo(json.dumps(event.model_dump(mode="json"), indent=2))


async def _run_redrive(
    server: str,
    seqs: list[int],
    all_letters: bool,
    worker: str | None,
    subject: str | None,
) -> list[dlq.Redriven]:
    async with open_jetstream(server) as js:
        letters = await dlq.select_letters(
            js, seqs, all_letters=all_letters, worker=worker, subject=subject
        )
        return [await dlq.redrive(js, letter) for letter in letters]


@app.command("redrive")
def redrive(
    seqs: SeqsArgument = None,
    all_letters: AllOption = False,
    subject: Annotated[
        str | None,
        typer.Option("--subject", help="Only letters whose original subject matches (wildcards)."),
    ] = None,
    worker: WorkerOption = None,
    server: ServerOption = None,
) -> None:
    """Publish the original bytes again to their subject, then delete the dead letters.

    Every consumer of that subject sees the copy; workers are idempotent by event id, so
    only the one that failed applies it.
    """
    done = asyncio.run(
        _run_redrive(server or default_url(), list(seqs or []), all_letters, worker, subject)
    )
    for r in done:
        typer.echo(f"redriven: DLQ #{r.letter.dlq_seq} -> {r.letter.subject} ({r.stream}#{r.seq})")
    typer.echo(f"redriven {len(done)} dead letter{'s' if len(done) != 1 else ''}")


async def _run_purge(
    server: str, seqs: list[int], all_letters: bool, worker: str | None
) -> list[int]:
    async with open_jetstream(server) as js:
        letters = await dlq.select_letters(js, seqs, all_letters=all_letters, worker=worker)
        return [await _delete(js, letter) for letter in letters]


async def _delete(js: JetStreamContext, letter: DeadLetter) -> int:
    assert letter.dlq_seq is not None
    await dlq.delete_letter(js, letter.dlq_seq)
    return letter.dlq_seq


@app.command("purge")
def purge(
    seqs: SeqsArgument = None,
    all_letters: AllOption = False,
    worker: WorkerOption = None,
    server: ServerOption = None,
) -> None:
    """Delete dead letters for good (one by one: the DLQ stream denies purges)."""
    deleted = asyncio.run(
        _run_purge(server or default_url(), list(seqs or []), all_letters, worker)
    )
    typer.echo(f"deleted {len(deleted)} dead letter{'s' if len(deleted) != 1 else ''}")
